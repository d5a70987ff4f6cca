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

/// A level as Lambda names them (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`; any case), or as
/// `tracing` does. `FATAL` has no `tracing` level: it keeps errors only.
fn level_filter(level: &str) -> Option<LevelFilter> {
    let level = level.trim();
    if level.eq_ignore_ascii_case("fatal") {
        return Some(LevelFilter::ERROR);
    }
    level.parse().ok()
}

/// Installs the global subscriber and panic hook. Call first thing in `main`.
pub fn init() {
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| level_filter(&l))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_lambda_documents_parses() {
        for (given, level) in [
            ("TRACE", LevelFilter::TRACE),
            ("DEBUG", LevelFilter::DEBUG),
            ("INFO", LevelFilter::INFO),
            ("WARN", LevelFilter::WARN),
            ("ERROR", LevelFilter::ERROR),
            ("FATAL", LevelFilter::ERROR),
            ("fatal", LevelFilter::ERROR),
            ("info", LevelFilter::INFO),
        ] {
            assert_eq!(level_filter(given), Some(level), "{given}");
        }
        assert_eq!(level_filter("loud"), None);
    }
}
