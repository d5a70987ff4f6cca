//! Structured logs. JSON unless Lambda's `AWS_LAMBDA_LOG_FORMAT` says `Text`; level from
//! `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), default INFO. Panics are logged as error events too.
//!
//! `lambda_runtime` prints every raw event at TRACE (a custom-resource request with its pre-signed
//! `ResponseURL` and properties): its TRACE events are dropped whatever level or directive is set.

use tracing::Level;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{self as subscriber, Layer, Registry};

/// False for the events no configuration of ours may log (the runtime's raw events).
fn loggable(meta: &tracing::Metadata<'_>) -> bool {
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

/// `level` for every target, except those `RUST_LOG` names (`aws_smithy_runtime=debug,info`); a
/// `RUST_LOG` that does not parse is ignored.
fn targets(level: LevelFilter, rust_log: Option<&str>) -> Targets {
    let named = rust_log
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_default();
    Targets::new()
        .with_default(level)
        .with_targets(named.iter().filter(|(target, _)| !target.is_empty()))
}

/// Installs the global subscriber and panic hook. Call first thing in `main`.
pub fn init() {
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| level_filter(&l))
        .unwrap_or(LevelFilter::INFO);
    let filter = targets(level, std::env::var("RUST_LOG").ok().as_deref()).and(filter_fn(loggable));
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

    #[test]
    fn rust_log_names_targets_and_the_level_covers_the_rest() {
        let t = targets(LevelFilter::WARN, Some("aws_smithy_runtime=debug,info"));
        assert!(t.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(!t.would_enable("detective_control", &Level::INFO));
        assert!(t.would_enable("detective_control", &Level::WARN));
        let t = targets(LevelFilter::INFO, Some("not a = directive = list"));
        assert!(t.would_enable("x", &Level::INFO));
        assert!(!t.would_enable("x", &Level::DEBUG));
    }
}
