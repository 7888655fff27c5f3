//! The cluster's own log lines for a program that installs no `tracing` subscriber: without
//! one, a crash loop would restart workers silently. [`Cluster::run`](crate::Cluster::run)
//! installs one, writing to stderr, filtered by `RUST_LOG` (default: warnings and errors),
//! in colour only on a terminal. A program that installs its own first keeps it.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Installs the default subscriber, unless the program has one.
pub(crate) fn install_default() {
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .finish();
    // Another thread may have installed one meanwhile: then that one stays.
    let _ = tracing::subscriber::set_global_default(subscriber);
}
