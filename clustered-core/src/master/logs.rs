//! [`LogBook`]: the workers' recent output, kept by the master for `clusterctl logs` and for a
//! crash loop's error, streamed to followers (`clusterctl logs -f`), and appended to the log
//! files when there are some (`CLUSTER_LOG_FILE`, `CLUSTER_ERROR_LOG_FILE`; reopened on SIGUSR1,
//! for logrotate).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::sync::lock;

/// Lines kept, across every worker.
const KEPT: usize = 1000;
/// Lines a slow follower may fall behind before it skips some.
const FOLLOW_CAPACITY: usize = 1024;

/// Which of a worker's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Its stdout.
    Out,
    /// Its stderr.
    Err,
}

/// `out` or `err`.
impl std::fmt::Display for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogStream::Out => "out",
            LogStream::Err => "err",
        })
    }
}

/// One line a worker wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The worker's slot.
    pub id: usize,
    /// Its stdout or its stderr.
    pub stream: LogStream,
    /// The line, without its newline (invalid UTF-8 replaced).
    pub line: String,
}

/// The workers' recent output.
#[derive(Debug)]
pub(crate) struct LogBook {
    recent: Mutex<VecDeque<LogLine>>,
    live: broadcast::Sender<LogLine>,
    files: Mutex<LogFiles>,
}

/// The files worker output is appended to: stdout lines to `out`, stderr lines to `err` (to
/// `out` when there is no `err`).
#[derive(Debug, Default)]
struct LogFiles {
    out: Option<(PathBuf, File)>,
    err: Option<(PathBuf, File)>,
}

/// [`open_append`], with the path in the error.
fn open_named(path: &Path) -> io::Result<(PathBuf, File)> {
    open_append(path)
        .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", path.display())))
}

fn open_append(path: &Path) -> io::Result<(PathBuf, File)> {
    let file = File::options().create(true).append(true).open(path)?;
    Ok((path.to_owned(), file))
}

impl Default for LogBook {
    fn default() -> Self {
        Self {
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
            live: broadcast::Sender::new(FOLLOW_CAPACITY),
            files: Mutex::new(LogFiles::default()),
        }
    }
}

impl LogBook {
    /// Appends worker output to these files from now on; an error names the file.
    pub(crate) fn open_files(&self, out: Option<&Path>, err: Option<&Path>) -> io::Result<()> {
        let open = |path: Option<&Path>| path.map(open_named).transpose();
        *lock(&self.files) = LogFiles {
            out: open(out)?,
            err: open(err)?,
        };
        Ok(())
    }

    /// Opens the log files again by name (after logrotate moved them away).
    pub(crate) fn reopen_files(&self) {
        let mut files = lock(&self.files);
        let LogFiles { out, err } = &mut *files;
        for (path, file) in [out, err].into_iter().flatten() {
            match open_append(path) {
                Ok((_, reopened)) => *file = reopened,
                Err(error) => tracing::error!(
                    path = %path.display(),
                    %error,
                    "cannot reopen a log file; still writing to the old one"
                ),
            }
        }
    }

    /// Keeps `line` (written as `text`, its prefixed form, to the log files).
    pub(crate) fn record(&self, line: LogLine, text: &[u8]) {
        {
            let mut files = lock(&self.files);
            let LogFiles { out, err } = &mut *files;
            let file = match line.stream {
                LogStream::Err => err.as_mut().or(out.as_mut()),
                LogStream::Out => out.as_mut(),
            };
            if let Some((_, file)) = file {
                // A full disk is no reason to stop serving; the terminal still has the line.
                let _ = file.write_all(text);
            }
        }
        let mut recent = lock(&self.recent);
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(line.clone());
        drop(recent);
        let _ = self.live.send(line);
    }

    /// The last `count` lines of slot `id` (of every slot when `None`), oldest first.
    pub(crate) fn recent(
        &self,
        id: Option<usize>,
        stream: Option<LogStream>,
        count: usize,
    ) -> Vec<LogLine> {
        let recent = lock(&self.recent);
        let mut lines: Vec<LogLine> = recent
            .iter()
            .rev()
            .filter(|line| id.is_none_or(|id| line.id == id))
            .filter(|line| stream.is_none_or(|stream| line.stream == stream))
            .take(count)
            .cloned()
            .collect();
        lines.reverse();
        lines
    }

    /// Every line from now on.
    pub(crate) fn follow(&self) -> broadcast::Receiver<LogLine> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: usize, stream: LogStream, text: &str) -> LogLine {
        LogLine {
            id,
            stream,
            line: text.into(),
        }
    }

    #[test]
    fn keeps_the_last_lines_per_slot_and_stream_in_order() {
        let book = LogBook::default();
        for n in 0..KEPT + 10 {
            book.record(line(n % 2 + 1, LogStream::Out, &n.to_string()), b"");
        }
        book.record(line(2, LogStream::Err, "boom"), b"");
        let last = book.recent(Some(1), None, 2);
        assert_eq!(
            last.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
            ["1006", "1008"]
        );
        assert_eq!(
            book.recent(Some(2), Some(LogStream::Err), 5),
            [line(2, LogStream::Err, "boom")]
        );
        assert_eq!(book.recent(None, None, usize::MAX).len(), KEPT);
    }
}
