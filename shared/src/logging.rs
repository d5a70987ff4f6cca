//! Structured logs. JSON unless Lambda's `AWS_LAMBDA_LOG_FORMAT` says `Text`; level from
//! `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), default INFO. Panics are logged as error events too.

use lambda_runtime::tracing::subscriber::{self, EnvFilter, filter::LevelFilter};

/// Installs the global subscriber and panic hook. Call first thing in `main`.
pub fn init() {
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let builder = subscriber::fmt()
        .with_target(false)
        .with_env_filter(
            EnvFilter::builder()
                .with_default_directive(level.into())
                .from_env_lossy(),
        )
        .with_writer(std::io::stdout);
    let installed = if text {
        builder.without_time().try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    };
    if installed.is_err() {
        return; // already installed (tests)
    }
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
}
