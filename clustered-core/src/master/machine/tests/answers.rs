//! Every command gets an answer: done (what it did), refused (why; nothing changed), or failed
//! (why), when it is true, not guessed from a timeout.

use crate::Policy;

use super::*;
use crate::master::command::{Done, Replacement, Scale};

fn done(text: &str) -> Answer {
    Answer::Done(Done::saying(text))
}

/// A scale's answer: `text`, and the counts before and after.
fn scaled(text: &str, from: usize, to: usize) -> Answer {
    Answer::Done(Done {
        scaled: Some((from, to)),
        ..Done::saying(text)
    })
}

#[test]
fn a_reload_is_answered_when_it_finishes_and_one_asked_meanwhile_when_the_next_does() {
    let (mut h, _) = Harness::running(1, Policy::Rr);
    let (first, actions) = h.ask(Command::Reload);
    assert!(answers(&actions).is_empty(), "not yet");
    let new = spawns(&actions)[0].0;
    let (second, actions) = h.ask(Command::Reload);
    assert!(answers(&actions).is_empty(), "queued after the running one");
    h.spawned(new);
    let actions = h.listening(new);
    let replaced = vec![Replacement {
        id: 1,
        old_pid: Some(1001),
        new_pid: 1002,
    }];
    let reloaded = Answer::Done(Done {
        replaced,
        ..Done::saying("reloaded: every worker was replaced (1 now serve)")
    });
    assert_eq!(answers(&actions), [(first, &reloaded)]);
    let again = spawns(&actions)[0].0;
    h.spawned(again);
    let actions = h.listening(again);
    assert_eq!(answers(&actions).len(), 1);
    assert_eq!(answers(&actions)[0].0, second);
    assert!(answers(&actions)[0].1.is_done());
}

#[test]
fn a_reload_before_the_cluster_runs_is_refused_and_an_aborted_one_fails_saying_why() {
    let (mut h, _) = Harness::bound(config(1, Policy::Rr));
    let mut early = Harness::new(config(1, Policy::Rr));
    let (reply, actions) = early.ask(Command::Reload);
    let [(to, Answer::Refused(why))] = answers(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(to, reply);
    assert!(why.contains("not running"), "{why}");

    let worker = WorkerKey(0);
    h.bring_up(worker);
    let (reply, actions) = h.ask(Command::Reload);
    let new = spawns(&actions)[0].0;
    let (queued, _) = h.ask(Command::Reload);
    h.spawned(new);
    let actions = h.exited(new, ProcessExit::Code(2));
    let given = answers(&actions);
    assert_eq!(given.len(), 2, "{actions:?}");
    let [(first, Answer::Failed(why)), (second, Answer::Failed(_))] = given[..] else {
        panic!("{given:?}")
    };
    assert_eq!((first, second), (reply, queued));
    assert!(
        why.contains("reload aborted at worker 1") && why.contains("exit code 2"),
        "{why}"
    );
}

#[test]
fn a_scale_is_answered_once_the_new_workers_serve_and_refused_during_a_reload() {
    let (mut h, _) = Harness::running(2, Policy::Rr);
    let (reply, actions) = h.ask(Command::Scale(Scale::To(3)));
    assert!(
        answers(&actions).is_empty(),
        "the new worker does not serve yet"
    );
    let new = spawns(&actions)[0].0;
    let actions = h.bring_up(new);
    assert_eq!(
        answers(&actions),
        [(reply, &scaled("scaled from 2 to 3 workers", 2, 3))]
    );

    let (reply, actions) = h.ask(Command::Scale(Scale::To(3)));
    assert_eq!(
        answers(&actions),
        [(reply, &scaled("3 workers already", 3, 3))]
    );
    let (reply, actions) = h.ask(Command::Scale(Scale::By(-1)));
    assert_eq!(
        answers(&actions),
        [(reply, &scaled("scaled from 3 to 2 workers", 3, 2))],
        "the removed one drains; the rest serve"
    );

    h.command(Command::Reload);
    let (reply, actions) = h.ask(Command::Scale(Scale::To(5)));
    let [(to, Answer::Refused(why))] = answers(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(to, reply);
    assert!(why.contains("during a rolling reload"), "{why}");
    assert!(spawns(&actions).is_empty());
}

#[test]
fn a_restart_replaces_the_worker_at_once_and_is_answered_when_its_successor_serves() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (reply, actions) = h.ask(Command::Restart(9));
    assert!(
        matches!(answers(&actions)[..], [(to, Answer::Refused(why))] if to == reply && why.contains("no worker 9"))
    );

    let (reply, actions) = h.ask(Command::Restart(2));
    assert!(sent(&actions).contains(&(w[1], &Message::Disconnect)));
    let [(new, 2)] = spawns(&actions)[..] else {
        panic!("its successor, at once: {actions:?}")
    };
    assert!(answers(&actions).is_empty());
    let actions = h.bring_up(new);
    let [(to, Answer::Done(what))] = answers(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(to, reply);
    assert!(
        what.message.starts_with("worker 2 replaced: pid 1002 -> "),
        "{what}"
    );
    assert_eq!(
        what.replaced,
        [Replacement {
            id: 2,
            old_pid: Some(1002),
            new_pid: 1003,
        }]
    );
    let actions = h.exited(w[1], ProcessExit::Code(0));
    assert!(notices(&actions).iter().any(|n| matches!(
        n,
        Notice::Exit {
            reason: ExitReason::Requested,
            ..
        }
    )));
}

#[test]
fn what_still_waits_when_the_master_stops_fails_saying_so() {
    let (mut h, _) = Harness::running(1, Policy::Rr);
    let (reload, _) = h.ask(Command::Reload);
    let (stop, actions) = h.ask(Command::Shutdown);
    let given = answers(&actions);
    assert!(given.contains(&(
        stop,
        &done("stopping: the workers drain, then the master exits")
    )));
    assert!(given.contains(&(reload, &Answer::Failed("the master is stopping".into()))));
    let (again, actions) = h.ask(Command::Shutdown);
    assert!(matches!(answers(&actions)[..], [(to, Answer::Refused(_))] if to == again));
}

#[test]
fn a_restart_whose_slot_a_scale_removes_is_answered_failed() {
    let (mut h, _) = Harness::running(3, Policy::Rr);
    let (reply, actions) = h.ask(Command::Restart(3));
    assert!(answers(&actions).is_empty());
    let actions = h.command(Command::Scale(Scale::To(2)));
    let [(to, Answer::Failed(why))] = answers(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(to, reply);
    assert!(why.contains("a scale then removed its slot"), "{why}");
}
