//! CPU and memory of a process, from `/proc` (what `clusterctl ls` shows, PM2's columns, and
//! the per-worker metrics).

use std::time::Duration;

/// How long CPU use is sampled over.
pub(crate) const CPU_WINDOW: Duration = Duration::from_millis(200);

/// User plus system CPU time of `pid` so far, in clock ticks (`None` once it is gone).
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 14 and 15 of the line are the 12th and 13th after the name.
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user.saturating_add(system))
}

/// User plus system CPU time of `pid` so far, in seconds (0 once it is gone).
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let hertz = rustix::param::clock_ticks_per_second().max(1) as f64;
    cpu_ticks(pid).unwrap_or(0) as f64 / hertz
}

/// This process's resident memory, read again and again from one `/proc/self/statm` kept
/// open: one `pread` a reading, where opening `/proc/<pid>/status` each time costs four or
/// five system calls (the worker reads it for every heartbeat).
#[derive(Debug)]
pub(crate) struct OwnMemory {
    statm: Option<std::fs::File>,
    page: u64,
}

impl OwnMemory {
    /// Opens `/proc/self/statm` (readings are 0 when it cannot).
    pub(crate) fn open() -> Self {
        Self {
            statm: std::fs::File::open("/proc/self/statm").ok(),
            page: u64::try_from(rustix::param::page_size()).unwrap_or(4096),
        }
    }

    /// Resident memory now, in bytes (`VmRSS`: statm's second field, in pages).
    pub(crate) fn resident_bytes(&self) -> u64 {
        use std::os::unix::fs::FileExt;
        let mut text = [0u8; 128];
        let Some(read) = self
            .statm
            .as_ref()
            .and_then(|statm| statm.read_at(&mut text, 0).ok())
        else {
            return 0;
        };
        let text = std::str::from_utf8(&text[..read]).unwrap_or("");
        let pages = text
            .split_whitespace()
            .nth(1)
            .and_then(|pages| pages.parse::<u64>().ok());
        pages.map_or(0, |pages| pages.saturating_mul(self.page))
    }
}

/// Resident memory of `pid`, in bytes (0 once it is gone).
pub(crate) fn rss_bytes(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib.saturating_mul(1024))
}

/// Percent of one core used between two samples `ticks` apart over [`CPU_WINDOW`].
pub(crate) fn cpu_percent(ticks: u64) -> f64 {
    let hertz = rustix::param::clock_ticks_per_second().max(1) as f64;
    let seconds = ticks as f64 / hertz;
    (seconds / CPU_WINDOW.as_secs_f64() * 1000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(rss_bytes(pid) > 0);
        assert_eq!(cpu_ticks(u32::MAX), None);
        assert_eq!(rss_bytes(u32::MAX), 0);
        // Read again from the file kept open, it agrees with `VmRSS` (within what a moment
        // of this test's own allocations moves it).
        let own = OwnMemory::open();
        let (first, status, second) = (own.resident_bytes(), rss_bytes(pid), own.resident_bytes());
        assert!(first > 0 && second > 0);
        let (low, high) = (first.min(second), first.max(second));
        assert!(
            status + (1 << 20) >= low && status <= high + (1 << 20),
            "{first} {status} {second}"
        );
    }
}
