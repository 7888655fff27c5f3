//! Runtime scaling: new slots start workers, removed slots drain and are not replaced.

use crate::Policy;
use clustered_ipc::Message;

use super::*;
use crate::master::command::{Command, MAX_WORKERS, Scale};
use crate::master::machine::SignalAction;

fn scale(h: &mut Harness, scale: Scale) -> Vec<Action> {
    h.command(Command::Scale(scale))
}

#[test]
fn the_target_count_stays_between_one_and_the_maximum() {
    assert_eq!(Scale::To(3).target(2), 3);
    assert_eq!(Scale::By(2).target(2), 4);
    assert_eq!(Scale::By(-1).target(2), 1);
    assert_eq!(Scale::By(-5).target(2), 1, "never below one worker");
    assert_eq!(Scale::To(0).target(2), 1);
    assert_eq!(Scale::By(i64::MAX).target(2), MAX_WORKERS);
    assert_eq!(Scale::By(i64::MIN).target(2), 1);
}

#[test]
fn scaling_up_starts_workers_in_the_new_slots() {
    let (mut h, _) = Harness::running(2, Policy::Rr);
    let actions = scale(&mut h, Scale::To(4));
    let slots: Vec<usize> = spawns(&actions).iter().map(|(_, slot)| *slot).collect();
    assert_eq!(slots, [3, 4]);
    assert!(notices(&actions).contains(&&Notice::Scaled { from: 2, to: 4 }));
    // A new worker takes connections once it listens.
    let new = spawns(&actions)[0].0;
    h.bring_up(new);
    let taken: Vec<WorkerKey> = (0..3).map(|_| handoffs(&h.connect().1)[0].0).collect();
    assert!(taken.contains(&new), "{taken:?}");
}

#[test]
fn scaling_down_drains_the_highest_slots_and_never_replaces_them() {
    let (mut h, w) = Harness::running(3, Policy::Rr);
    let actions = h.feed(Input::Signal(SignalAction::Scale("SIGTTOU", Scale::By(-1))));
    assert!(
        sent(&actions).contains(&(w[2], &Message::Disconnect)),
        "slot 3 drains"
    );
    assert!(notices(&actions).contains(&&Notice::Scaled { from: 3, to: 2 }));
    assert!(spawns(&actions).is_empty());
    for _ in 0..4 {
        assert_ne!(handoffs(&h.connect().1)[0].0, w[2], "no connection for it");
    }
    // It exits, even as if it had crashed: its slot is gone, nothing restarts it.
    let actions = h.exited(w[2], ProcessExit::Code(1));
    assert!(spawns(&actions).is_empty());
    assert!(h.newly_armed().is_empty(), "no restart timer: {actions:?}");
}

#[test]
fn a_restart_due_for_a_slot_scaled_away_is_dropped() {
    let (mut h, w) = Harness::running(3, Policy::Rr);
    h.advance(Duration::from_secs(5));
    h.exited(w[2], ProcessExit::Code(1));
    assert_eq!(h.newly_armed()[0].1, Timer::RestartDue { slot: 3 });
    let actions = h.feed(Input::Signal(SignalAction::Scale("SIGTTOU", Scale::By(-1))));
    assert!(notices(&actions).contains(&&Notice::Scaled { from: 3, to: 2 }));
    let actions = h.expire(&Timer::RestartDue { slot: 3 });
    assert!(spawns(&actions).is_empty(), "{actions:?}");
}

#[test]
fn no_scaling_during_a_reload() {
    let (mut h, _) = Harness::running(2, Policy::Rr);
    h.feed(Input::Signal(SignalAction::Reload("SIGHUP")));
    let actions = scale(&mut h, Scale::To(5));
    assert!(spawns(&actions).is_empty());
    assert!(notices(&actions).is_empty(), "{actions:?}");
}
