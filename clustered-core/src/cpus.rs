//! How many workers "one per CPU" means here, and why: the CPUs this process may use, as
//! `std::thread::available_parallelism` counts them (its affinity and its cgroup's CPU quota,
//! so a container limited to 2 CPUs on a 64-core host gets 2 workers, not 64: PM2's
//! `instances: max` counts the host's), and how that compares with the machine's cores.

/// The CPUs this process may use, and the reason, for the start-up line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cpus {
    /// How many.
    pub(crate) count: usize,
    /// Why that many, e.g. `CPU quota 2.0 of 8 cores`.
    pub(crate) why: String,
}

/// The CPUs this process may use here.
pub(crate) fn available() -> Cpus {
    let count = std::thread::available_parallelism().map_or(1, usize::from);
    Cpus {
        count,
        why: describe(count, online_cores(), cgroup_quota()),
    }
}

/// Why `count` CPUs, given the machine's `online` cores and the cgroup's CPU `quota` (in
/// CPUs), each when known.
fn describe(count: usize, online: Option<usize>, quota: Option<f64>) -> String {
    match (quota, online) {
        (Some(quota), Some(online)) if quota < online as f64 => {
            format!("CPU quota {quota:.1} of {online} cores")
        }
        (_, Some(online)) if count < online => {
            format!("{count} of {online} cores this process may use")
        }
        _ => format!("one per core, {count}"),
    }
}

/// The machine's online cores (`/sys/devices/system/cpu/online`, e.g. `0-3,6`).
fn online_cores() -> Option<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    count_cpu_list(text.trim())
}

/// How many CPUs a list like `0-3,6` names; `None` if it does not parse.
fn count_cpu_list(list: &str) -> Option<usize> {
    list.split(',').try_fold(0usize, |total, range| {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let (first, last): (usize, usize) = (first.parse().ok()?, last.parse().ok()?);
        Some(total.saturating_add(last.checked_sub(first)?.saturating_add(1)))
    })
}

/// This process's cgroup CPU quota, in CPUs, if it has one (cgroup v2's `cpu.max`, else v1's
/// `cpu.cfs_quota_us` over `cpu.cfs_period_us`; read at the mount root, as a container sees
/// its own cgroup there).
fn cgroup_quota() -> Option<f64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    if let Some(max) = read("/sys/fs/cgroup/cpu.max") {
        let (quota, period) = max.trim().split_once(' ')?;
        return quota_in_cpus(quota, period);
    }
    let quota = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")?;
    let period = read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")?;
    quota_in_cpus(quota.trim(), period.trim())
}

/// `quota` over `period` (microseconds) in CPUs; `None` for no quota (`max`, `-1`) or nonsense.
fn quota_in_cpus(quota: &str, period: &str) -> Option<f64> {
    let (quota, period): (u64, u64) = (quota.parse().ok()?, period.parse().ok()?);
    (period > 0).then(|| quota as f64 / period as f64)
}

#[cfg(test)]
mod tests {
    use super::{count_cpu_list, describe, quota_in_cpus};

    #[test]
    fn the_reason_names_a_quota_or_an_affinity_below_the_cores() {
        assert_eq!(describe(2, Some(8), Some(2.0)), "CPU quota 2.0 of 8 cores");
        assert_eq!(describe(2, Some(8), Some(1.5)), "CPU quota 1.5 of 8 cores");
        assert_eq!(
            describe(1, Some(2), None),
            "1 of 2 cores this process may use"
        );
        assert_eq!(describe(2, Some(2), Some(4.0)), "one per core, 2");
        assert_eq!(describe(4, None, None), "one per core, 4");
    }

    #[test]
    fn cpu_lists_and_quotas_parse_as_the_kernel_writes_them() {
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
        assert_eq!(quota_in_cpus("200000", "100000"), Some(2.0));
        assert_eq!(quota_in_cpus("max", "100000"), None);
        assert_eq!(quota_in_cpus("-1", "100000"), None);
        assert_eq!(quota_in_cpus("100", "0"), None);
    }
}
