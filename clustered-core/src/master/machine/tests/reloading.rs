//! Rolling reload, step by step.

use std::io;

use crate::Policy;
use clustered_ipc::Message;

use super::*;
use crate::Error;
use crate::master::command::Command;
use crate::master::machine::SignalAction;

fn reload(h: &mut Harness) -> Vec<Action> {
    h.feed(Input::Signal(SignalAction::Reload("SIGHUP")))
}

/// Whether `actions` retire `worker`: `disconnect` sent and announced.
fn retires(actions: &[Action], worker: WorkerKey) -> bool {
    sent(actions).contains(&(worker, &Message::Disconnect))
        && notices(actions).contains(&&Notice::Disconnect(worker))
}

#[test]
fn a_reload_replaces_each_slot_in_turn_retiring_the_old_worker_once_the_new_one_listens() {
    let (mut h, old) = Harness::running(2, Policy::Rr);
    let actions = reload(&mut h);
    assert_eq!(notices(&actions)[0], &Notice::ReloadStarted);
    let [(first, 1)] = spawns(&actions)[..] else {
        panic!("slot 1 first, alone: {actions:?}")
    };
    assert_eq!(
        h.newly_armed(),
        [(
            Duration::from_secs(30),
            Timer::ReloadDeadline { worker: first }
        )]
    );
    // Not listening yet: the old worker keeps serving, nothing is retired.
    let actions = h.spawned(first);
    assert!(!retires(&actions, old[0]));
    let actions = h.listening(first);
    assert!(retires(&actions, old[0]));
    assert!(notices(&actions).iter().any(|n| matches!(
        n,
        Notice::Reloaded { slot: 1, new_pid, .. } if *new_pid > 0
    )));
    let [(second, 2)] = spawns(&actions)[..] else {
        panic!("then slot 2: {actions:?}")
    };
    h.spawned(second);
    let actions = h.listening(second);
    assert!(retires(&actions, old[1]));
    assert_eq!(notices(&actions).last().unwrap(), &&Notice::ReloadFinished);
    // The old workers exit as asked: nobody is restarted.
    for worker in old {
        h.exited(worker, ProcessExit::Code(0));
        assert!(h.newly_armed().is_empty());
    }
    // New connections go to the new workers only.
    let served: Vec<WorkerKey> = (0..4).map(|_| handoffs(&h.connect().1)[0].0).collect();
    assert!(
        served.iter().all(|w| *w == first || *w == second),
        "{served:?}"
    );
    // The deadline of a finished step means nothing.
    let actions = h.expire(&Timer::ReloadDeadline { worker: first });
    assert!(
        kills(&actions).is_empty() && notices(&actions).is_empty(),
        "{actions:?}"
    );
}

#[test]
fn a_replacement_too_slow_to_listen_aborts_the_reload_and_the_old_worker_keeps_serving() {
    let (mut h, old) = Harness::running(2, Policy::Rr);
    let new = spawns(&reload(&mut h))[0].0;
    h.spawned(new);
    let (waited, actions) = h.run_until(&Timer::ReloadDeadline { worker: new });
    assert_eq!(waited, Duration::from_secs(30));
    assert_eq!(kills(&actions), [new]);
    assert!(notices(&actions).iter().any(|n| matches!(
        n,
        Notice::ReloadFailed { slot: 1, reason } if reason.contains("not listening within 30s")
    )));
    assert!(!retires(&actions, old[0]));
    h.exited(new, ProcessExit::Signal(9));
    assert!(
        h.newly_armed().is_empty(),
        "an abandoned replacement is not restarted"
    );
    let served: Vec<WorkerKey> = (0..4).map(|_| handoffs(&h.connect().1)[0].0).collect();
    assert_eq!(served, [old[0], old[1], old[0], old[1]]);
}

#[test]
fn a_replacement_that_dies_before_listening_aborts_the_reload() {
    let (mut h, old) = Harness::running(2, Policy::Rr);
    let new = spawns(&reload(&mut h))[0].0;
    h.spawned(new);
    let actions = h.exited(new, ProcessExit::Code(2));
    assert!(notices(&actions).iter().any(|n| matches!(
        n,
        Notice::ReloadFailed { slot: 1, reason } if reason.contains("exit code 2")
    )));
    assert!(spawns(&actions).is_empty() && h.newly_armed().is_empty());
    assert!(!retires(&actions, old[0]));
}

#[test]
fn a_replacement_that_cannot_start_aborts_the_reload() {
    let (mut h, _) = Harness::running(2, Policy::Rr);
    let new = spawns(&reload(&mut h))[0].0;
    let error = Error::CurrentExe(io::ErrorKind::NotFound.into());
    let actions = h.feed(Input::SpawnFailed { worker: new, error });
    assert!(
        notices(&actions)
            .iter()
            .any(|n| matches!(n, Notice::ReloadFailed { slot: 1, .. }))
    );
    // A later reload starts afresh.
    let actions = reload(&mut h);
    assert_eq!(spawns(&actions).len(), 1);
}

#[test]
fn a_reload_asked_for_during_a_reload_runs_once_after_it() {
    let (mut h, _) = Harness::running(1, Policy::Rr);
    let first = spawns(&reload(&mut h))[0].0;
    assert!(
        spawns(&reload(&mut h)).is_empty(),
        "not a second one at once"
    );
    assert!(spawns(&h.command(Command::Reload)).is_empty());
    h.spawned(first);
    let actions = h.listening(first);
    let started_again: Vec<&Notice> = notices(&actions)
        .into_iter()
        .filter(|n| matches!(n, Notice::ReloadFinished | Notice::ReloadStarted))
        .collect();
    assert_eq!(
        started_again,
        [&Notice::ReloadFinished, &Notice::ReloadStarted]
    );
    let second = spawns(&actions)[0].0;
    h.spawned(second);
    let actions = h.listening(second);
    assert!(retires(&actions, first));
    assert_eq!(notices(&actions).last().unwrap(), &&Notice::ReloadFinished);
    assert!(spawns(&actions).is_empty(), "two requests, one more reload");
}

#[test]
fn a_batch_of_two_replaces_two_slots_at_a_time() {
    let (mut h, _) = Harness::running_with(Config {
        reload_batch: 2,
        ..config(3, Policy::Rr)
    });
    let actions = reload(&mut h);
    let slots: Vec<usize> = spawns(&actions).iter().map(|(_, slot)| *slot).collect();
    assert_eq!(slots, [1, 2]);
    let first = spawns(&actions)[0].0;
    h.spawned(first);
    let actions = h.listening(first);
    let slots: Vec<usize> = spawns(&actions).iter().map(|(_, slot)| *slot).collect();
    assert_eq!(slots, [3]);
}
