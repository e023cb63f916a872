//! Logging: JSON lines in Lambda and whenever stderr is not a terminal (so CloudWatch
//! Logs Insights can filter on `operation_id` and `request_id`), readable text on a
//! terminal. Spans carry the ids: every event inside an operation's span is tagged.
//!
//! Level from `RUST_LOG` (default `info`; the CLI passes its own default).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

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
    let _ = subscriber(filter, format, std::io::stderr).try_init();
}

/// The subscriber [`init`] installs, at `level` (an `EnvFilter` directive such as `trace`),
/// writing to `writer`: tests capture exactly what a Lambda or the CLI would log, at any
/// level, to check that no secret reaches it.
pub fn capture<W>(level: &str, format: LogFormat, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    subscriber(EnvFilter::new(level), format, writer)
}

fn subscriber<W>(filter: EnvFilter, format: LogFormat, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .flatten_event(true)
                .with_target(false)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.with_target(false).compact().finish()),
    }
}
