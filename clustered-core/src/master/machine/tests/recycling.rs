//! Recycling: a worker past its request or memory limit is replaced, replacement first, one
//! at a time, never during a reload; a failed replacement leaves it serving for a while; a
//! memory limit a fresh worker already passes stops the master instead.

use crate::Policy;
use clustered_ipc::Message;

use super::*;
use crate::master::machine::SignalAction;
use crate::master::machine::recycling::{RECYCLE_PAUSE, SERVED_LOOK, jitter};

fn recycling(max_requests: Option<u64>, max_memory: Option<u64>) -> Config {
    Config {
        recycle: Recycle {
            max_requests,
            max_requests_jitter: 0,
            max_memory,
            max_memory_from: "CLUSTER_MAX_MEMORY",
        },
        ..config(2, Policy::Rr)
    }
}

fn heartbeat(served: u64, rss: u64) -> Message {
    Message::Heartbeat {
        conns: 0,
        inflight: 0,
        served,
        rss,
    }
}

fn recycled(actions: &[Action]) -> Vec<(WorkerKey, ExitReason)> {
    notices(actions)
        .into_iter()
        .filter_map(|notice| match notice {
            Notice::Recycling { worker, reason } => Some((*worker, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_worker_past_max_requests_is_replaced_first_then_drained_one_at_a_time() {
    let (mut h, old) = Harness::running_with(recycling(Some(300), None));
    assert!(spawns(&h.message(old[0], heartbeat(299, 0))).is_empty());
    let actions = h.message(old[0], heartbeat(300, 0));
    assert_eq!(recycled(&actions), [(old[0], ExitReason::MaxRequests)]);
    let [(new, 1)] = spawns(&actions)[..] else {
        panic!("a replacement for slot 1: {actions:?}")
    };
    // Not drained before its replacement listens; a second worker past its limit waits.
    assert!(sent(&actions).is_empty());
    let actions = h.message(old[1], heartbeat(1000, 0));
    assert!(spawns(&actions).is_empty() && recycled(&actions).is_empty());
    h.spawned(new);
    let actions = h.listening(new);
    assert!(sent(&actions).contains(&(old[0], &Message::Disconnect)));
    assert!(!notices(&actions).contains(&&Notice::ReloadFinished));
    // The next heartbeat of the second starts its turn.
    let actions = h.message(old[1], heartbeat(1000, 0));
    assert_eq!(recycled(&actions), [(old[1], ExitReason::MaxRequests)]);
    // The first one's exit says why, and it is not restarted.
    let actions = h.exited(old[0], ProcessExit::Code(0));
    assert!(notices(&actions).iter().any(|notice| matches!(
        notice,
        Notice::Exit {
            reason: ExitReason::MaxRequests,
            exited_after_disconnect: true,
            ..
        }
    )));
    assert!(spawns(&actions).is_empty() && h.newly_armed().is_empty());
}

#[test]
fn a_worker_past_max_memory_is_replaced() {
    let (mut h, old) = Harness::running_with(recycling(None, Some(100 << 20)));
    assert!(recycled(&h.message(old[1], heartbeat(5, 99 << 20))).is_empty());
    let actions = h.message(old[1], heartbeat(5, 100 << 20));
    assert_eq!(recycled(&actions), [(old[1], ExitReason::MaxMemory)]);
    assert_eq!(spawns(&actions)[0].1, 2);
}

/// Feeds `worker`'s heartbeat in memory saying it has served `served`.
fn served_in_memory(h: &mut Harness, worker: WorkerKey, served: u64) {
    let load = LoadReport {
        served,
        ..LoadReport::default()
    };
    h.feed(Input::Beat { worker, load });
}

fn served_looks(armed: &[(Duration, Timer)]) -> usize {
    armed
        .iter()
        .filter(|(_, timer)| *timer == Timer::ServedLook)
        .count()
}

#[test]
fn with_max_requests_served_counts_are_looked_at_while_they_change_and_no_longer() {
    let (mut h, old) = Harness::running_with(recycling(Some(1000), None));
    served_in_memory(&mut h, old[0], 5);
    assert_eq!(h.newly_armed(), [(SERVED_LOOK, Timer::ServedLook)]);
    served_in_memory(&mut h, old[1], 6);
    assert_eq!(served_looks(&h.armed()), 1, "one look at a time");
    h.now += SERVED_LOOK;
    h.feed(Input::Timeout);
    assert_eq!(
        h.newly_armed(),
        [(SERVED_LOOK, Timer::ServedLook)],
        "the counts changed meanwhile: again"
    );
    h.now += SERVED_LOOK;
    h.feed(Input::Timeout);
    assert_eq!(
        served_looks(&h.armed()),
        0,
        "nothing changed: the master may sleep"
    );
    served_in_memory(&mut h, old[0], 5);
    assert_eq!(served_looks(&h.armed()), 0, "the same count is no change");
    served_in_memory(&mut h, old[0], 7);
    assert_eq!(served_looks(&h.armed()), 1);
}

#[test]
fn without_max_requests_the_served_counts_arm_no_look() {
    let (mut h, old) = Harness::running_with(recycling(None, Some(100 << 20)));
    served_in_memory(&mut h, old[0], 5);
    assert_eq!(served_looks(&h.armed()), 0);
}

#[test]
fn a_heartbeat_said_in_memory_recycles_as_a_frame_does() {
    let (mut h, old) = Harness::running_with(recycling(Some(300), Some(100 << 20)));
    let mut beat = |worker, served, rss| {
        let load = LoadReport {
            served,
            rss,
            ..LoadReport::default()
        };
        recycled(&h.feed(Input::Beat { worker, load }))
    };
    assert!(beat(old[0], 299, 99 << 20).is_empty());
    assert_eq!(beat(old[0], 300, 0), [(old[0], ExitReason::MaxRequests)]);
}

#[test]
fn a_memory_limit_below_a_fresh_worker_stops_the_master_naming_both_figures() {
    let (mut h, old) = Harness::running_with(recycling(None, Some(100)));
    let actions = h.message(old[0], heartbeat(0, 5_452_595));
    assert!(recycled(&actions).is_empty(), "not recycled forever");
    assert!(spawns(&actions).is_empty());
    assert!(actions.iter().any(|a| matches!(a, Action::CloseListeners)));
    let actions = h.feed(Input::ListenersClosed);
    for worker in &old {
        assert!(sent(&actions).contains(&(*worker, &Message::Disconnect)));
    }
    h.exited(old[0], ProcessExit::Code(0));
    let error = finished(h.exited(old[1], ProcessExit::Code(0)))
        .expect("finished")
        .unwrap_err();
    assert!(
        matches!(
            error,
            crate::Error::MaxMemoryTooLow {
                limit: 100,
                rss: 5_452_595,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "max-memory of 100 B (CLUSTER_MAX_MEMORY) is below a fresh worker's resident memory \
         (5.2 MiB): set it above that, or to 0 to turn memory recycling off"
    );
}

#[test]
fn only_a_fresh_worker_s_memory_counts_as_its_floor() {
    // Its first heartbeat is under the limit: growing past it later is recycling, not an error.
    let (mut h, old) = Harness::running_with(recycling(None, Some(100 << 20)));
    let closes = |actions: &[Action]| actions.iter().any(|a| matches!(a, Action::CloseListeners));
    assert!(!closes(&h.message(old[0], heartbeat(0, 20 << 20))));
    let actions = h.message(old[0], heartbeat(0, 150 << 20));
    assert_eq!(recycled(&actions), [(old[0], ExitReason::MaxMemory)]);
    assert!(!closes(&actions));
    // A replacement already past it at its first heartbeat keeps serving, and memory
    // recycling turns off (it would replace every worker over and over).
    let [(new, 1)] = spawns(&actions)[..] else {
        panic!("{actions:?}")
    };
    h.spawned(new);
    h.listening(new);
    let actions = h.message(new, heartbeat(0, 120 << 20));
    assert!(!closes(&actions), "a running service is not stopped");
    assert!(recycled(&actions).is_empty());
    assert!(recycled(&h.message(new, heartbeat(0, 200 << 20))).is_empty());
    assert!(recycled(&h.message(old[1], heartbeat(0, 300 << 20))).is_empty());
}

#[test]
fn no_recycling_during_a_reload_and_a_reload_asked_during_one_follows_it() {
    let (mut h, old) = Harness::running_with(recycling(Some(10), None));
    let actions = h.feed(Input::Signal(SignalAction::Reload("SIGHUP")));
    let [(new, 1)] = spawns(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert!(recycled(&h.message(old[1], heartbeat(50, 0))).is_empty());
    h.spawned(new);
    h.listening(new);

    let (mut h, old) = Harness::running_with(recycling(Some(10), None));
    let actions = h.message(old[0], heartbeat(10, 0));
    let [(new, 1)] = spawns(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert!(spawns(&h.feed(Input::Signal(SignalAction::Reload("SIGHUP")))).is_empty());
    h.spawned(new);
    let actions = h.listening(new);
    assert_eq!(notices(&actions).last(), Some(&&Notice::ReloadStarted));
    assert_eq!(spawns(&actions)[0].1, 1, "the asked-for reload begins");
}

#[test]
fn a_failed_replacement_leaves_the_worker_serving_and_pauses_recycling() {
    let (mut h, old) = Harness::running_with(recycling(Some(10), None));
    let actions = h.message(old[0], heartbeat(10, 0));
    let [(new, 1)] = spawns(&actions)[..] else {
        panic!("{actions:?}")
    };
    h.spawned(new);
    let actions = h.exited(new, ProcessExit::Code(1));
    assert!(
        !notices(&actions)
            .iter()
            .any(|n| matches!(n, Notice::ReloadFailed { .. }))
    );
    assert!(sent(&actions).is_empty(), "the old worker is not drained");
    assert!(recycled(&h.message(old[0], heartbeat(11, 0))).is_empty());
    h.advance(RECYCLE_PAUSE);
    assert_eq!(recycled(&h.message(old[0], heartbeat(12, 0))).len(), 1);
}

#[test]
fn jitter_spreads_limits_within_its_range() {
    let limits: Vec<u64> = (0..100)
        .map(|key| jitter(WorkerKey(key), 30, SEED))
        .collect();
    assert!(limits.iter().all(|extra| *extra <= 30));
    let distinct: std::collections::BTreeSet<_> = limits.iter().collect();
    assert!(distinct.len() > 15, "{limits:?}");
    assert_eq!(jitter(WorkerKey(7), 0, SEED), 0);
    let other_master: Vec<u64> = (0..100).map(|key| jitter(WorkerKey(key), 30, 8)).collect();
    assert_ne!(
        limits, other_master,
        "another master's workers recycle at other counts"
    );
}
