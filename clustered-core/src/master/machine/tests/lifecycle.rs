//! Starting, restarting and stopping single workers.

use std::io;

use crate::Policy;
use clustered_ipc::Message;

use super::super::restart::jittered;
use super::super::rng::Rng;
use super::*;
use crate::Error;
use crate::master::command::Command;

#[test]
fn the_configured_address_is_bound_before_any_worker_starts() {
    let mut h = Harness::new(config(2, Policy::Rr));
    let actions = h.feed(Input::Start);
    assert_eq!(binds(&actions), [ADDRESS]);
    assert!(spawns(&actions).is_empty());
    let actions = h.feed(Input::Bound {
        address: ADDRESS.to_owned(),
        result: Ok(bound()),
    });
    assert_eq!(
        spawns(&actions),
        [(WorkerKey(0), 1), (WorkerKey(1), 2)],
        "one worker per slot"
    );
}

#[test]
fn a_taken_port_stops_the_cluster_before_any_worker_starts() {
    let mut h = Harness::new(config(2, Policy::Rr));
    h.feed(Input::Start);
    let actions = h.feed(Input::Bound {
        address: ADDRESS.to_owned(),
        result: Err(io::ErrorKind::AddrInUse.into()),
    });
    assert!(spawns(&actions).is_empty());
    assert!(actions.iter().any(|a| matches!(a, Action::CloseListeners)));
    let result = finished(h.feed(Input::ListenersClosed)).expect("finished");
    let error = result.unwrap_err();
    assert!(matches!(error, Error::Bind { .. }), "{error}");
    assert!(error.to_string().contains(ADDRESS), "{error}");
}

#[test]
fn ready_is_announced_once_when_every_worker_listens() {
    let (mut h, _) = Harness::bound(config(2, Policy::Rr));
    let first = h.bring_up(WorkerKey(0));
    assert!(
        !notices(&first)
            .iter()
            .any(|n| matches!(n, Notice::Ready(_)))
    );
    let second = h.bring_up(WorkerKey(1));
    let ready: Vec<_> = notices(&second)
        .into_iter()
        .filter(|n| matches!(n, Notice::Ready(_)))
        .collect();
    assert_eq!(ready, [&Notice::Ready(vec![bound()])]);
    let again = h.listening(WorkerKey(1));
    assert!(
        !notices(&again)
            .iter()
            .any(|n| matches!(n, Notice::Ready(_)))
    );
}

#[test]
fn a_worker_that_dies_on_its_own_is_restarted_in_its_slot_after_a_backoff() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    h.advance(Duration::from_secs(5));
    let actions = h.exited(w[1], ProcessExit::Code(1));
    // The first draw of the seeded generator: the same delay on every run.
    let expected = jittered(Duration::from_millis(100), &mut Rng::new(SEED));
    let exit = Notice::Exit {
        worker: w[1],
        code: Some(1),
        signal: None,
        exited_after_disconnect: false,
        reason: ExitReason::Unexpected,
    };
    assert!(notices(&actions).contains(&&exit));
    assert_eq!(h.newly_armed(), [(expected, Timer::RestartDue { slot: 2 })]);
    assert!(
        (Duration::from_millis(50)..=Duration::from_millis(100)).contains(&expected),
        "{expected:?}"
    );
    assert!(notices(&actions).contains(&&Notice::Restarting {
        slot: 2,
        delay: expected
    }));
    let just_before = h.advance(expected - Duration::from_millis(1));
    assert!(spawns(&just_before).is_empty(), "not before its time");
    let actions = h.advance(Duration::from_millis(1));
    assert_eq!(
        spawns(&actions),
        [(WorkerKey(2), 2)],
        "exactly at {expected:?}"
    );
}

#[test]
fn early_deaths_double_the_backoff_and_a_stable_worker_resets_it() {
    let (mut h, w) = Harness::running(1, Policy::Rr);
    let mut worker = w[0];
    let mut delays = Vec::new();
    for _ in 0..3 {
        h.advance(Duration::from_millis(100));
        h.exited(worker, ProcessExit::Code(1));
        delays.push(h.newly_armed()[0].0);
        worker = spawns(&h.expire(&Timer::RestartDue { slot: 1 }))[0].0;
        h.bring_up(worker);
    }
    for (delay, cap) in delays.iter().zip([100, 200, 400]) {
        let cap = Duration::from_millis(cap);
        assert!(*delay <= cap && *delay >= cap / 2, "{delays:?}");
    }
    // Up longer than min_uptime: back to the first delay.
    h.advance(Duration::from_secs(2));
    h.exited(worker, ProcessExit::Code(1));
    assert!(h.newly_armed()[0].0 <= Duration::from_millis(100));
}

#[test]
fn a_crash_loop_stops_the_cluster_with_an_error_naming_the_slot_and_the_exit() {
    let (mut h, w) = Harness::running(1, Policy::Rr);
    let mut worker = w[0];
    for _ in 0..3 {
        h.exited(worker, ProcessExit::Code(3));
        worker = spawns(&h.expire(&Timer::RestartDue { slot: 1 }))[0].0;
        h.spawned(worker);
    }
    let actions = h.exited(worker, ProcessExit::Code(3));
    assert!(spawns(&actions).is_empty());
    assert!(
        !h.armed()
            .iter()
            .any(|(_, t)| *t == Timer::RestartDue { slot: 1 }),
        "never armed: {:?}",
        h.armed()
    );
    assert!(actions.iter().any(|a| matches!(a, Action::CloseListeners)));
    let error = finished(h.feed(Input::ListenersClosed))
        .unwrap()
        .unwrap_err();
    let Error::CrashLoop {
        slot,
        early_deaths,
        status,
        ..
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(
        (*slot, *early_deaths, status.as_str()),
        (1, 4, "exit code 3")
    );
}

#[test]
fn a_disconnected_worker_is_not_replaced_and_is_killed_if_it_outlives_the_timeout() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let actions = h.command(Command::Disconnect(w[0]));
    assert_eq!(sent(&actions), [(w[0], &Message::Disconnect)]);
    assert!(notices(&actions).contains(&&Notice::Disconnect(w[0])));
    assert_eq!(
        h.newly_armed(),
        [(
            Duration::from_secs(30),
            Timer::DisconnectTimeout { worker: w[0] }
        )]
    );
    for _ in 0..3 {
        let (_, actions) = h.connect();
        let (worker, seq, _) = handoffs(&actions)[0];
        assert_eq!(worker, w[1], "no connection for it");
        h.accepted(worker, seq, true);
    }
    let (waited, actions) = h.run_until(&Timer::DisconnectTimeout { worker: w[0] });
    assert_eq!(waited, Duration::from_secs(30));
    assert_eq!(kills(&actions), [w[0]]);
    let actions = h.exited(w[0], ProcessExit::Signal(9));
    assert!(h.newly_armed().is_empty(), "not restarted");
    assert!(notices(&actions).contains(&&Notice::Exit {
        worker: w[0],
        code: None,
        signal: Some(9),
        exited_after_disconnect: true,
        reason: ExitReason::DrainTimeout,
    }));
}

#[test]
fn a_worker_user_code_signalled_is_not_replaced() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    h.command(Command::Release(w[1]));
    // It drains on the SIGTERM user code sent: not a stop from outside to replace.
    let actions = h.message(w[1], Message::Stopping);
    assert!(spawns(&actions).is_empty(), "{actions:?}");
    let actions = h.exited(w[1], ProcessExit::Signal(15));
    assert!(h.newly_armed().is_empty() && spawns(&actions).is_empty());
}

#[test]
fn a_worker_of_another_protocol_version_is_killed_and_the_reload_it_aborts_says_why() {
    let (mut h, old) = Harness::running(1, Policy::Rr);
    let actions = h.command(Command::Reload);
    let new = spawns(&actions)[0].0;
    h.spawned(new);
    let online = Message::Online {
        version: PROTOCOL_VERSION + 1,
        pid: 0,
    };
    let actions = h.message(new, online);
    assert_eq!(kills(&actions), [new]);
    assert!(!notices(&actions).contains(&&Notice::Online(new)));
    let actions = h.exited(new, ProcessExit::Signal(9));
    let reasons: Vec<&String> = notices(&actions)
        .into_iter()
        .filter_map(|notice| match notice {
            Notice::ReloadFailed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1, "{actions:?}");
    assert!(reasons[0].contains("protocol-version"), "{}", reasons[0]);
    assert!(!reasons[0].contains("signal 9"), "{}", reasons[0]);
    assert!(notices(&actions).iter().any(|n| matches!(
        n,
        Notice::Exit {
            reason: ExitReason::ProtocolVersion,
            ..
        }
    )));
    assert_eq!(
        handoffs(&h.connect().1)[0].0,
        old[0],
        "the old one serves on"
    );
}

#[test]
fn a_worker_that_breaks_the_protocol_gets_nothing_more_and_its_handoffs_go_on_once_it_is_gone() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (owed, actions) = h.connect();
    assert_eq!(handoffs(&actions)[0].0, w[0]);
    let actions = h.message(w[0], Message::Disconnect);
    assert_eq!(kills(&actions), [w[0]]);
    for _ in 0..4 {
        let (_, actions) = h.connect();
        let (worker, seq, _) = handoffs(&actions)[0];
        assert_eq!(worker, w[1], "out of routing at once");
        h.accepted(worker, seq, true);
    }
    let actions = h.exited(w[0], ProcessExit::Signal(9));
    let moved: Vec<(WorkerKey, ConnId)> = handoffs(&actions)
        .into_iter()
        .map(|(worker, _, conn)| (worker, conn))
        .collect();
    assert_eq!(
        moved,
        [(w[1], owed)],
        "its unacknowledged handoff goes on once it has exited"
    );
    assert!(notices(&actions).contains(&&Notice::Exit {
        worker: w[0],
        code: None,
        signal: Some(9),
        exited_after_disconnect: false,
        reason: ExitReason::Protocol,
    }));
    assert_eq!(
        h.newly_armed()[0].1,
        Timer::RestartDue { slot: 1 },
        "replaced"
    );
}

#[test]
fn a_worker_stopping_of_its_own_accord_is_replaced_at_once_and_counts_no_crash() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let actions = h.message(w[1], Message::Stopping);
    assert_eq!(spawns(&actions), [(WorkerKey(2), 2)], "its successor, now");
    assert!(
        !notices(&actions)
            .iter()
            .any(|n| matches!(n, Notice::Restarting { .. })),
        "not a restart: {actions:?}"
    );
    for _ in 0..3 {
        let (_, actions) = h.connect();
        assert_eq!(handoffs(&actions)[0].0, w[0], "nothing more for it");
    }
    let actions = h.exited(w[1], ProcessExit::Code(0));
    assert!(notices(&actions).contains(&&Notice::Exit {
        worker: w[1],
        code: Some(0),
        signal: None,
        exited_after_disconnect: true,
        reason: ExitReason::Requested,
    }));
    assert!(
        spawns(&actions).is_empty() && h.newly_armed().is_empty(),
        "its successor runs already"
    );
    // Many of them, one after the other: never a crash loop.
    let mut worker = WorkerKey(2);
    for _ in 0..20 {
        h.bring_up(worker);
        let actions = h.message(worker, Message::Stopping);
        let next = spawns(&actions)[0].0;
        h.exited(worker, ProcessExit::Code(0));
        worker = next;
    }
    assert!(
        !h.armed()
            .iter()
            .any(|(_, t)| matches!(t, Timer::RestartDue { .. }))
    );
}

#[test]
fn a_first_worker_that_cannot_start_stops_the_cluster_and_a_replacement_is_retried() {
    let (mut h, _) = Harness::bound(config(1, Policy::Rr));
    let error = Error::CurrentExe(io::ErrorKind::NotFound.into());
    let actions = h.feed(Input::SpawnFailed {
        worker: WorkerKey(0),
        error,
    });
    assert!(actions.iter().any(|a| matches!(a, Action::CloseListeners)));

    let (mut h, w) = Harness::running(1, Policy::Rr);
    h.advance(Duration::from_secs(5));
    h.exited(w[0], ProcessExit::Code(1));
    let worker = spawns(&h.expire(&Timer::RestartDue { slot: 1 }))[0].0;
    let error = Error::CurrentExe(io::Error::from_raw_os_error(24));
    let actions = h.feed(Input::SpawnFailed { worker, error });
    assert_eq!(h.newly_armed()[0].1, Timer::RestartDue { slot: 1 });
    assert!(!actions.iter().any(|a| matches!(a, Action::CloseListeners)));
}

#[test]
fn an_address_asked_for_twice_is_bound_once_and_both_are_answered() {
    let mut h = Harness::new(Config {
        addresses: Vec::new(),
        ..config(2, Policy::Shared)
    });
    let actions = h.feed(Input::Start);
    let w: Vec<WorkerKey> = spawns(&actions).iter().map(|(w, _)| *w).collect();
    let query = |seq| Message::QueryServer {
        seq,
        address: "127.0.0.1:0".into(),
    };
    assert_eq!(binds(&h.message(w[0], query(1))), ["127.0.0.1:0"]);
    assert!(binds(&h.message(w[1], query(7))).is_empty(), "bound once");
    let actions = h.feed(Input::Bound {
        address: "127.0.0.1:0".into(),
        result: Ok(bound()),
    });
    let acks: Vec<(WorkerKey, u64, bool)> = actions
        .iter()
        .filter_map(|action| match action {
            Action::Send {
                worker,
                message: Message::ServerAck { seq, address, .. },
                share,
            } => Some((*worker, *seq, *address == bound() && share.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [(w[0], 1, true), (w[1], 7, true)]);
}

#[test]
fn a_listening_socket_that_cannot_be_copied_fails_that_listen_saying_why() {
    let (mut h, w) = Harness::running(2, Policy::Shared);
    let query = Message::QueryServer {
        seq: 9,
        address: ADDRESS.into(),
    };
    let actions = h.message(w[0], query);
    assert!(
        matches!(&sent(&actions)[..], [(worker, Message::ServerAck { seq: 9, .. })] if *worker == w[0])
    );
    let actions = h.feed(Input::ShareFailed {
        worker: w[0],
        seq: 9,
        key: key(),
        error: io::Error::from_raw_os_error(24),
    });
    let [(worker, Message::ServerError { seq: 9, message })] = &sent(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(*worker, w[0]);
    assert!(
        message.contains("cannot copy the listening socket"),
        "{message}"
    );
    assert!(message.contains("os error 24"), "{message}");
    assert!(
        kills(&actions).is_empty() && !actions.iter().any(|a| matches!(a, Action::CloseListeners))
    );
}

#[test]
fn an_address_one_worker_cannot_bind_fails_its_listen_not_the_cluster() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let query = Message::QueryServer {
        seq: 3,
        address: "256.0.0.1:80".into(),
    };
    assert_eq!(binds(&h.message(w[0], query)), ["256.0.0.1:80"]);
    let actions = h.feed(Input::Bound {
        address: "256.0.0.1:80".into(),
        result: Err(io::ErrorKind::InvalidInput.into()),
    });
    let [(worker, Message::ServerError { seq: 3, message })] = &sent(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(*worker, w[0]);
    assert!(
        message.contains("cannot listen on 256.0.0.1:80"),
        "{message}"
    );
    assert!(!actions.iter().any(|a| matches!(a, Action::CloseListeners)));
    assert_eq!(handoffs(&h.connect().1).len(), 1, "the cluster serves on");
}

#[test]
fn a_spawn_that_fails_for_lack_of_descriptors_is_retried_and_never_counted_as_a_crash() {
    let (mut h, actions) = Harness::bound(config(1, Policy::Rr));
    let mut worker = spawns(&actions)[0].0;
    for _ in 0..20 {
        let error = Error::Spawn {
            slot: 1,
            exe: "/bin/true".into(),
            source: io::Error::from_raw_os_error(24),
        };
        let actions = h.feed(Input::SpawnFailed { worker, error });
        assert!(!actions.iter().any(|a| matches!(a, Action::CloseListeners)));
        assert_eq!(
            h.newly_armed(),
            [(Duration::from_secs(1), Timer::RestartDue { slot: 1 })]
        );
        assert!(notices(&actions).is_empty(), "no restart counted");
        worker = spawns(&h.expire(&Timer::RestartDue { slot: 1 }))[0].0;
    }
    // Started at last, it serves; its crashes still count from zero.
    h.bring_up(worker);
    h.exited(worker, ProcessExit::Code(1));
    assert!(matches!(
        h.newly_armed()[0].1,
        Timer::RestartDue { slot: 1 }
    ));
}
