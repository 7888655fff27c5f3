//! [`LogBook`]: the workers' recent output, kept by the master for `clusterctl logs` and for a
//! crash loop's error, and streamed to followers (`clusterctl logs -f`).

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::sync::lock;

/// Lines kept, across every worker.
const KEPT: usize = 1000;
/// Lines a slow follower may fall behind before it skips some.
const FOLLOW_CAPACITY: usize = 1024;

/// One line a worker wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The worker's slot.
    pub id: usize,
    /// `out` or `err`.
    pub stream: String,
    /// The line, without its newline (invalid UTF-8 replaced).
    pub line: String,
}

/// The workers' recent output.
#[derive(Debug)]
pub(crate) struct LogBook {
    recent: Mutex<VecDeque<LogLine>>,
    live: broadcast::Sender<LogLine>,
}

impl Default for LogBook {
    fn default() -> Self {
        Self {
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
            live: broadcast::Sender::new(FOLLOW_CAPACITY),
        }
    }
}

impl LogBook {
    pub(crate) fn record(&self, line: LogLine) {
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
        stream: Option<&str>,
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

    fn line(id: usize, stream: &str, text: &str) -> LogLine {
        LogLine {
            id,
            stream: stream.into(),
            line: text.into(),
        }
    }

    #[test]
    fn keeps_the_last_lines_per_slot_and_stream_in_order() {
        let book = LogBook::default();
        for n in 0..KEPT + 10 {
            book.record(line(n % 2 + 1, "out", &n.to_string()));
        }
        book.record(line(2, "err", "boom"));
        let last = book.recent(Some(1), None, 2);
        assert_eq!(
            last.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
            ["1006", "1008"]
        );
        assert_eq!(
            book.recent(Some(2), Some("err"), 5),
            [line(2, "err", "boom")]
        );
        assert_eq!(book.recent(None, None, usize::MAX).len(), KEPT);
    }
}
