//! CPU and memory of a process, from `/proc` (what `clusterctl ls` shows, PM2's columns, and
//! the per-worker metrics).

use std::sync::OnceLock;
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
    let hertz = clock_ticks_per_second() as f64;
    cpu_ticks(pid).unwrap_or(0) as f64 / hertz
}

/// The page size, from the kernel's auxiliary vector (4096 when it cannot be read).
fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        auxv_value(AT_PAGESZ)
            .filter(|&page| page > 0)
            .unwrap_or(4096)
    })
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat`'s times (100 when it cannot be read).
fn clock_ticks_per_second() -> u64 {
    const AT_CLKTCK: u64 = 17;
    static HERTZ: OnceLock<u64> = OnceLock::new();
    *HERTZ.get_or_init(|| {
        auxv_value(AT_CLKTCK)
            .filter(|&hertz| hertz > 0)
            .unwrap_or(100)
    })
}

/// One entry of this process's auxiliary vector, read from `/proc/self/auxv` (pairs of native
/// words). Not `rustix::param`: it validates the vDSO's ELF image, which faults under valgrind
/// (rustix issue 1559), and the benchmarks run the workers under callgrind.
fn auxv_value(key: u64) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
    let auxv = std::fs::read("/proc/self/auxv").ok()?;
    let word = |bytes: &[u8]| -> Option<u64> {
        let bytes: [u8; WORD] = bytes.try_into().ok()?;
        u64::try_from(usize::from_ne_bytes(bytes)).ok()
    };
    auxv.chunks_exact(2 * WORD).find_map(|pair| {
        let (entry, value) = pair.split_at(WORD);
        (word(entry)? == key).then(|| word(value)).flatten()
    })
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
            page: page_size(),
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
    let hertz = clock_ticks_per_second() as f64;
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

    #[test]
    fn the_auxiliary_vector_gives_what_rustix_reads() {
        assert_eq!(page_size(), rustix::param::page_size() as u64);
        assert_eq!(
            clock_ticks_per_second(),
            rustix::param::clock_ticks_per_second()
        );
        assert_eq!(auxv_value(u64::MAX), None);
    }
}
