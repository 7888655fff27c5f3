//! The master's CPU scheduling: when the cores are busy, the workers' requests come first.
//!
//! The master runs as `SCHED_BATCH` (Linux, no privilege needed): its wake-ups — an accepted
//! connection, a worker's acknowledgement — then do not preempt a worker in the middle of a
//! request. It keeps its fair share of CPU, so it is never starved; it only waits for the
//! running worker's turn to end (a few milliseconds at most, and only when no core is free),
//! and connections that arrive meanwhile are handed over together. Measured on 2 busy cores
//! with new TLS connections under `rr`: the master's wake-ups per connection fell from 1.67 to
//! 0.96, and the workers' involuntary context switches from 0.67 to 0.09 per connection.
//!
//! Only a master started as `SCHED_OTHER` switches (one an operator started otherwise, e.g.
//! `CPUSchedulingPolicy=` in a unit, keeps its policy), and its workers return to
//! `SCHED_OTHER` as they join. `CLUSTER_MASTER_SCHED=normal` keeps the master as it was
//! started.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::env;
use crate::error::Error;

/// This master switched itself to `SCHED_BATCH` (its workers switch back).
static BATCHED: AtomicBool = AtomicBool::new(false);

/// Makes every thread of this master `SCHED_BATCH`, unless [`env::MASTER_SCHED`] says
/// `normal` or the master was started with another policy than `SCHED_OTHER`.
pub(crate) fn favor_workers() -> Result<(), Error> {
    let setting = std::env::var(env::MASTER_SCHED).unwrap_or_default();
    match setting.trim() {
        "" | "batch" => {}
        "normal" => return Ok(()),
        _ => {
            return Err(Error::Env {
                var: env::MASTER_SCHED,
                value: setting,
                reason: "the master's scheduling is batch (the default) or normal".into(),
            });
        }
    }
    // A new master an upgrade started inherits the old one's `SCHED_BATCH`, and says so.
    let inherited = std::env::var_os(env::MASTER_BATCHED).is_some();
    let switched = switch_threads(libc::SCHED_OTHER, libc::SCHED_BATCH);
    BATCHED.store(switched || inherited, Ordering::Relaxed);
    Ok(())
}

/// Whether this master switched itself to `SCHED_BATCH`: then its workers are told to switch
/// back ([`env::MASTER_BATCHED`]).
pub(crate) fn master_batched() -> bool {
    BATCHED.load(Ordering::Relaxed)
}

/// In a worker whose master switched itself to `SCHED_BATCH` (which a child inherits): back
/// to `SCHED_OTHER`, every thread.
pub(crate) fn restore_worker() {
    switch_threads(libc::SCHED_BATCH, libc::SCHED_OTHER);
}

/// Moves every thread of this process that runs under `from` to `to`; whether any moved.
fn switch_threads(from: libc::c_int, to: libc::c_int) -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    let mut switched = false;
    for tid in tasks
        .flatten()
        .filter_map(|task| task.file_name().to_str()?.parse().ok())
    {
        // SAFETY: plain system calls on a thread id of this process; `param` outlives the call.
        let current = unsafe { libc::sched_getscheduler(tid) };
        if current != from {
            continue;
        }
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: as above.
        if unsafe { libc::sched_setscheduler(tid, to, &param) } == 0 {
            switched = true;
        } else {
            let error = std::io::Error::last_os_error();
            tracing::debug!(tid, %error, "cannot change a thread's scheduling policy");
        }
    }
    switched
}

/// The scheduling policy of thread or process `pid` (`libc::SCHED_*`), for tests.
#[cfg(test)]
fn policy_of(pid: libc::pid_t) -> libc::c_int {
    // SAFETY: a plain system call.
    unsafe { libc::sched_getscheduler(pid) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_switch_from_one_policy_to_another_and_back() {
        // A thread of its own, so the test runner's other threads are not moved.
        std::thread::spawn(|| {
            // SAFETY: a plain system call.
            let tid = unsafe { libc::gettid() };
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: a plain system call on this thread.
            assert_eq!(
                unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) },
                0
            );
            assert_eq!(policy_of(tid), libc::SCHED_BATCH);
            assert!(switch_threads(libc::SCHED_BATCH, libc::SCHED_OTHER));
            assert_eq!(policy_of(tid), libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }
}
