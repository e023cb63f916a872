//! Logging: JSON lines in Lambda and whenever stderr is not a terminal (so CloudWatch
//! Logs Insights can filter on `operation_id` and `request_id`), readable text on a
//! terminal. Spans carry the ids: every event inside an operation's span is tagged.
//!
//! Level from `RUST_LOG` (default `info`; the CLI passes its own default).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl LogFormat {
    pub fn detect() -> Self {
        let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
        if in_lambda || !std::io::stderr().is_terminal() { LogFormat::Json } else { LogFormat::Text }
    }
}

/// Install the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(default_level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .flatten_event(true)
            .with_target(false)
            .try_init(),
        LogFormat::Text => builder.with_target(false).compact().try_init(),
    };
}
