//! Silent, hung and slow-to-boot workers.

use crate::Policy;
use clustered_ipc::HEARTBEAT_PERIOD;

use super::super::config::{SUSPECT_AFTER, UNANSWERED_SUSPECT_AFTER};
use super::*;

#[test]
fn the_liveness_check_runs_when_a_worker_could_turn_silent_not_on_a_ticker() {
    let (h, _) = Harness::bound(config(1, Policy::Rr));
    assert!(h.newly_armed().contains(&(SUSPECT_AFTER, Timer::Liveness)));
    assert!(SUSPECT_AFTER >= HEARTBEAT_PERIOD * 2);
    // Idle workers that beat: a check every heartbeat period or two, never more often.
    let (mut h, _) = Harness::running(2, Policy::Rr);
    let mut checks = Vec::new();
    for _ in 0..10 {
        let (waited, _) = h.run_until(&Timer::Liveness);
        assert!(
            waited >= HEARTBEAT_PERIOD && waited <= SUSPECT_AFTER,
            "{waited:?}"
        );
        checks.push(waited);
        let liveness = h
            .armed()
            .into_iter()
            .filter(|(_, timer)| *timer == Timer::Liveness);
        assert_eq!(liveness.count(), 1, "one check armed at a time");
    }
    // A handoff is looked at once it could be owed too long; one armed check covers a burst.
    let (_, actions) = h.connect();
    assert!(!handoffs(&actions).is_empty());
    assert!(
        h.newly_armed()
            .contains(&(UNANSWERED_SUSPECT_AFTER, Timer::Liveness))
    );
    h.connect();
    assert!(h.newly_armed().is_empty(), "{:?}", h.newly_armed());
}

#[test]
fn a_silent_worker_gets_no_connections_until_it_answers_again() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    h.silence(w[0]);
    let actions = h.advance(SUSPECT_AFTER);
    assert!(kills(&actions).is_empty(), "suspect, not hung yet");
    for _ in 0..4 {
        assert_eq!(handoffs(&h.connect().1)[0].0, w[1]);
    }
    h.message(w[0], heartbeat());
    let turns: Vec<WorkerKey> = (0..2).map(|_| handoffs(&h.connect().1)[0].0).collect();
    assert!(turns.contains(&w[0]), "it answers again: {turns:?}");
}

#[test]
fn a_heartbeat_said_in_memory_keeps_a_worker_in_and_one_missed_leaves_it_out() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    h.silence(w[0]); // no frames from it: its heartbeats are counts the driver reads
    for _ in 0..3 {
        h.advance(HEARTBEAT_PERIOD);
        h.feed(Input::Beat {
            worker: w[0],
            load: LoadReport::default(),
        });
    }
    let turns: Vec<(WorkerKey, u64)> = (0..2)
        .map(|_| {
            let (worker, seq, _) = handoffs(&h.connect().1)[0];
            (worker, seq)
        })
        .collect();
    assert!(
        turns.iter().any(|(worker, _)| *worker == w[0]),
        "beating in memory is alive: {turns:?}"
    );
    for (worker, seq) in turns {
        h.accepted(worker, seq, true);
    }
    h.advance(SUSPECT_AFTER);
    for _ in 0..4 {
        assert_eq!(handoffs(&h.connect().1)[0].0, w[1], "no count: suspect");
    }
}

#[test]
fn a_worker_that_does_not_answer_a_handoff_is_left_out_long_before_its_heartbeat_is_missed() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (_, actions) = h.connect();
    assert_eq!(handoffs(&actions)[0].0, w[0]);
    assert!(UNANSWERED_SUSPECT_AFTER * 2 <= SUSPECT_AFTER);
    h.silence(w[0]);
    h.advance(UNANSWERED_SUSPECT_AFTER);
    for _ in 0..4 {
        assert_eq!(handoffs(&h.connect().1)[0].0, w[1], "left out");
    }
    h.accepted(w[0], 1, true);
    let turns: Vec<WorkerKey> = (0..2).map(|_| handoffs(&h.connect().1)[0].0).collect();
    assert!(turns.contains(&w[0]), "it answers again: {turns:?}");
}

#[test]
fn a_worker_that_answers_its_handoffs_is_never_left_out_for_owing_one() {
    let (mut h, w) = Harness::running(1, Policy::Rr);
    // A handoff every quarter second, each answered just before the next: always one owed.
    for seq in 1..=8 {
        let (_, actions) = h.connect();
        assert_eq!(
            handoffs(&actions),
            [(w[0], seq, handoffs(&actions)[0].2)],
            "still taken"
        );
        if seq > 1 {
            h.accepted(w[0], seq - 1, true);
        }
        h.advance(UNANSWERED_SUSPECT_AFTER / 2);
    }
}

#[test]
fn a_worker_silent_for_the_hang_timeout_is_killed_its_connections_go_on_and_it_is_replaced() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    // Handed to worker 1, which then stops: never acknowledged.
    let (conn, actions) = h.connect();
    assert_eq!(handoffs(&actions)[0].0, w[0]);
    h.silence(w[0]);
    let actions = h.advance(Duration::from_millis(4999));
    assert!(kills(&actions).is_empty(), "not yet the 5 s hang timeout");
    let actions = h.advance(Duration::from_millis(1));
    assert_eq!(
        kills(&actions),
        [w[0]],
        "killed at the hang timeout exactly"
    );
    assert!(kills(&h.advance(Duration::from_secs(1))).is_empty(), "once");
    let actions = h.exited(w[0], ProcessExit::Signal(9));
    assert_eq!(
        handoffs(&actions),
        [(w[1], 1, conn)],
        "its connection, to the other"
    );
    assert!(notices(&actions).contains(&&Notice::Exit {
        worker: w[0],
        code: None,
        signal: Some(9),
        exited_after_disconnect: false,
        reason: ExitReason::Hung,
    }));
    assert!(
        h.newly_armed()
            .iter()
            .any(|(_, t)| *t == Timer::RestartDue { slot: 1 })
    );
}

#[test]
fn with_hang_detection_off_a_silent_worker_is_only_left_out() {
    let (mut h, w) = Harness::running_with(Config {
        hang_timeout: None,
        ..config(2, Policy::Rr)
    });
    h.silence(w[0]);
    let actions = h.advance(Duration::from_secs(120));
    assert!(kills(&actions).is_empty());
    assert_eq!(handoffs(&h.connect().1)[0].0, w[1]);
}

#[test]
fn a_worker_not_yet_online_is_judged_by_the_boot_timeout_not_by_heartbeats() {
    let (mut h, actions) = Harness::bound(config(1, Policy::Rr));
    let (worker, _) = spawns(&actions)[0];
    assert!(
        h.newly_armed()
            .contains(&(Duration::from_secs(60), Timer::BootDeadline { worker }))
    );
    h.spawned(worker);
    let actions = h.advance(Duration::from_secs(10));
    assert!(kills(&actions).is_empty(), "booting, not hung");
    let (waited, actions) = h.run_until(&Timer::BootDeadline { worker });
    assert_eq!(waited, Duration::from_secs(50));
    assert_eq!(kills(&actions), [worker]);
    let actions = h.exited(worker, ProcessExit::Signal(9));
    assert!(notices(&actions).iter().any(|n| matches!(
        n,
        Notice::Exit {
            reason: ExitReason::BootTimeout,
            ..
        }
    )));
    // An early death, however long it took: the first backoff again, not a reset.
    let (delay, _) = h.newly_armed()[0];
    assert!(delay <= Duration::from_millis(100), "{delay:?}");
}

#[test]
fn a_worker_listening_in_time_is_left_alone_by_its_boot_deadline() {
    let (mut h, w) = Harness::running(1, Policy::Rr);
    let actions = h.expire(&Timer::BootDeadline { worker: w[0] });
    assert!(kills(&actions).is_empty(), "{actions:?}");
}

#[test]
fn a_worker_killed_at_its_boot_deadline_is_not_routed_to_when_its_listening_comes_late() {
    let (mut h, actions) = Harness::bound(config(2, Policy::Rr));
    let slow = spawns(&actions)[0].0;
    let other = spawns(&actions)[1].0;
    h.bring_up(other);
    h.spawned(slow);
    let actions = h.expire(&Timer::BootDeadline { worker: slow });
    assert_eq!(kills(&actions), [slow]);
    // Its `listening` was already on its way when the kill was decided.
    h.listening(slow);
    for _ in 0..4 {
        let (_, actions) = h.connect();
        let (worker, seq, _) = handoffs(&actions)[0];
        assert_eq!(worker, other, "nothing for the killed worker");
        h.accepted(worker, seq, true);
    }
}

#[test]
fn a_reload_replacement_killed_meanwhile_does_not_take_over_its_slot() {
    let (mut h, old) = Harness::running(1, Policy::Rr);
    let actions = h.command(crate::master::command::Command::Reload);
    let new = spawns(&actions)[0].0;
    h.spawned(new);
    // It breaks the protocol, then says it listens.
    let actions = h.message(new, Message::Disconnect);
    assert_eq!(kills(&actions), [new]);
    let actions = h.listening(new);
    assert!(
        !sent(&actions).contains(&(old[0], &Message::Disconnect)),
        "the old worker is not retired for a dying replacement: {actions:?}"
    );
    assert_eq!(handoffs(&h.connect().1)[0].0, old[0]);
}
