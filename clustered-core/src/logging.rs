//! The cluster's own log lines for a program that installs no `tracing` subscriber: without
//! one, a crash loop would restart workers silently. [`Cluster::run`](crate::Cluster::run)
//! installs one, writing to stderr, filtered by `RUST_LOG` (default: warnings and errors),
//! in colour only on a terminal, or one JSON object per line with `CLUSTER_LOG_FORMAT=json`
//! (as the master writes its workers' lines then). A program that installs its own first
//! keeps it.

use std::fmt;
use std::io::IsTerminal;
use std::time::SystemTime;

use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::log_format::{LogFormat, json_line};

/// Installs the default subscriber, unless the program has one.
pub(crate) fn install_default() {
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Another thread may have installed one meanwhile: then that one stays.
    let _ = match LogFormat::from_env() {
        LogFormat::Text => {
            let subscriber = builder.with_ansi(std::io::stderr().is_terminal()).finish();
            tracing::subscriber::set_global_default(subscriber)
        }
        LogFormat::Json => {
            let subscriber = builder.with_ansi(false).event_format(JsonLines).finish();
            tracing::subscriber::set_global_default(subscriber)
        }
    };
}

/// The master's own lines as the JSON objects its workers' lines are written as (`worker` and
/// `stream` null).
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut message = String::new();
        context.format_fields(Writer::new(&mut message), event)?;
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let line = json_line(SystemTime::now(), &level, None, None, &message);
        writeln!(writer, "{line}")
    }
}
