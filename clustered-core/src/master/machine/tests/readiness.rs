//! Readiness: when the master waits for it, a listening worker gets connections only once it
//! says it is ready, a reload's replacement takes over only then, and one not ready within
//! the boot timeout is killed.

use crate::Policy;
use clustered_ipc::Message;

use super::*;
use crate::master::machine::SignalAction;

fn waiting_for_readiness(workers: usize) -> Config {
    Config {
        wait_ready: true,
        ..config(workers, Policy::Rr)
    }
}

/// A worker of `h` started: spawned, online and listening, not ready.
fn listening_not_ready(h: &mut Harness, worker: WorkerKey) -> Vec<Action> {
    h.bring_up(worker)
}

fn is_ready_notice(actions: &[Action]) -> bool {
    notices(actions)
        .iter()
        .any(|n| matches!(n, Notice::Ready(_)))
}

#[test]
fn a_listening_worker_gets_no_connection_before_it_says_ready() {
    let (mut h, actions) = Harness::bound(waiting_for_readiness(1));
    let [(worker, 1)] = spawns(&actions)[..] else {
        panic!("{actions:?}")
    };
    let actions = listening_not_ready(&mut h, worker);
    assert!(!is_ready_notice(&actions), "not ready: no ready notice");
    let (conn, actions) = h.connect();
    assert!(handoffs(&actions).is_empty(), "held in the backlog");
    let actions = h.message(worker, Message::Ready);
    assert_eq!(handoffs(&actions), [(worker, 1, conn)]);
    assert!(is_ready_notice(&actions));
    // Said twice: nothing more happens.
    assert!(h.message(worker, Message::Ready).is_empty());
}

#[test]
fn a_reload_waits_for_the_replacement_to_be_ready() {
    let (mut h, actions) = Harness::bound(waiting_for_readiness(1));
    let old = spawns(&actions)[0].0;
    listening_not_ready(&mut h, old);
    h.message(old, Message::Ready);
    let actions = h.feed(Input::Signal(SignalAction::Reload("SIGHUP")));
    let [(new, 1)] = spawns(&actions)[..] else {
        panic!("{actions:?}")
    };
    let actions = listening_not_ready(&mut h, new);
    assert!(sent(&actions).is_empty(), "the old worker keeps serving");
    assert_eq!(handoffs(&h.connect().1)[0].0, old);
    let actions = h.message(new, Message::Ready);
    assert!(sent(&actions).contains(&(old, &Message::Disconnect)));
    assert_eq!(notices(&actions).last(), Some(&&Notice::ReloadFinished));
    assert_eq!(handoffs(&h.connect().1)[0].0, new);
}

#[test]
fn a_worker_not_ready_within_the_boot_timeout_is_killed() {
    let (mut h, actions) = Harness::bound(waiting_for_readiness(1));
    let worker = spawns(&actions)[0].0;
    listening_not_ready(&mut h, worker);
    let actions = h.expire(&Timer::BootDeadline { worker });
    assert_eq!(kills(&actions), [worker]);
}

#[test]
fn workers_that_never_say_ready_fail_the_start_after_three_boot_timeouts_saying_why() {
    let (mut h, actions) = Harness::bound(waiting_for_readiness(1));
    let mut worker = spawns(&actions)[0].0;
    for attempt in 1..=3 {
        listening_not_ready(&mut h, worker);
        let (waited, actions) = h.run_until(&Timer::BootDeadline { worker });
        assert_eq!(waited, Duration::from_secs(60));
        assert_eq!(kills(&actions), [worker]);
        let actions = h.exited(worker, ProcessExit::Signal(9));
        if attempt < 3 {
            assert!(!actions.iter().any(|a| matches!(a, Action::CloseListeners)));
            worker = spawns(&h.expire(&Timer::RestartDue { slot: 1 }))[0].0;
            continue;
        }
        assert!(actions.iter().any(|a| matches!(a, Action::CloseListeners)));
    }
    let error = finished(h.feed(Input::ListenersClosed))
        .expect("finished")
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(
            error,
            crate::Error::BootTimeouts {
                slot: 1,
                count: 3,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("listens but never said it is ready"),
        "{text}"
    );
    assert!(text.contains("CLUSTER_WAIT_READY"), "{text}");
}

#[test]
fn without_waiting_listening_is_ready_and_ready_changes_nothing() {
    let (mut h, workers) = Harness::running(1, Policy::Rr);
    assert_eq!(handoffs(&h.connect().1)[0].0, workers[0]);
    assert!(h.message(workers[0], Message::Ready).is_empty());
}

#[test]
fn a_worker_that_comes_to_serve_starts_its_slots_boot_timeouts_over() {
    let (mut h, actions) = Harness::bound(waiting_for_readiness(1));
    let mut worker = spawns(&actions)[0].0;
    for round in 0..4 {
        listening_not_ready(&mut h, worker);
        if round == 1 {
            // This one says ready: the two timeouts before it count no more.
            h.message(worker, Message::Ready);
            h.advance(Duration::from_secs(5));
            h.exited(worker, ProcessExit::Code(1));
        } else {
            h.expire(&Timer::BootDeadline { worker });
            let actions = h.exited(worker, ProcessExit::Signal(9));
            assert!(
                !actions.iter().any(|a| matches!(a, Action::CloseListeners)),
                "round {round}: {actions:?}"
            );
        }
        worker = spawns(&h.expire(&Timer::RestartDue { slot: 1 }))[0].0;
    }
}

/// What the machine last said of the cluster's readiness in `actions` (`/readyz`), if it did.
fn readiness(actions: &[Action]) -> Option<Result<(), &'static str>> {
    actions.iter().rev().find_map(|action| match action {
        Action::Readiness(readiness) => Some(*readiness),
        _ => None,
    })
}

#[test]
fn the_cluster_is_ready_while_a_worker_serves_and_unready_from_the_moment_a_stop_begins() {
    let mut h = Harness::new(config(1, Policy::Rr));
    let started = h.feed(Input::Start);
    assert!(matches!(readiness(&started), Some(Err(why)) if why.starts_with("starting")));
    let actions = h.feed(Input::Bound {
        address: ADDRESS.to_owned(),
        result: Ok(bound()),
    });
    let [(worker, 1)] = spawns(&actions)[..] else {
        panic!("{actions:?}")
    };
    let actions = h.bring_up(worker);
    assert_eq!(readiness(&actions), Some(Ok(())), "its worker serves");
    assert_eq!(
        readiness(&h.advance(Duration::from_secs(5))),
        None,
        "told once"
    );

    // Its only worker dies: unready until the successor serves.
    let actions = h.exited(worker, ProcessExit::Code(1));
    assert!(matches!(readiness(&actions), Some(Err(why)) if why.starts_with("no worker")));
    let (_, actions) = h.run_until(&Timer::RestartDue { slot: 1 });
    let [(successor, 1)] = spawns(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(readiness(&h.bring_up(successor)), Some(Ok(())));

    // A stop: unready at once, before the listeners close.
    let actions = h.feed(Input::Signal(SignalAction::Stop("SIGTERM")));
    assert!(
        matches!(&actions[..], [Action::Readiness(Err(why)), .., Action::CloseListeners] if why.starts_with("stopping")),
        "{actions:?}"
    );
}
