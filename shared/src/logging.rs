//! Structured logs. JSON unless Lambda's `AWS_LAMBDA_LOG_FORMAT` says `Text`; level from
//! `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), default INFO. Panics are logged as error events too.
//!
//! `lambda_runtime` prints every raw event at TRACE (a custom-resource request with its pre-signed
//! `ResponseURL` and properties): its TRACE events are dropped whatever level or directive is set.

use lambda_runtime::tracing::Level;
use lambda_runtime::tracing::subscriber::filter::{EnvFilter, FilterExt, LevelFilter, filter_fn};
use lambda_runtime::tracing::subscriber::layer::SubscriberExt;
use lambda_runtime::tracing::subscriber::util::SubscriberInitExt;
use lambda_runtime::tracing::subscriber::{self, Layer, Registry};

/// False for the events no configuration of ours may log (the runtime's raw events).
fn loggable(meta: &lambda_runtime::tracing::Metadata<'_>) -> bool {
    !(meta.target().starts_with("lambda_runtime") && *meta.level() == Level::TRACE)
}

/// Installs the global subscriber and panic hook. Call first thing in `main`.
pub fn init() {
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy()
        .and(filter_fn(loggable));
    let fmt = subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stdout);
    let layer: Box<dyn Layer<Registry> + Send + Sync> = if text {
        fmt.without_time().boxed()
    } else {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    };
    let installed = subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
    if installed.is_err() {
        return; // already installed (tests)
    }
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
}
