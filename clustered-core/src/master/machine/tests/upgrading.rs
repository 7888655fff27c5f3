//! Upgrading the master: one at a time, not during a reload or a stop or before the cluster
//! serves; a new master that fails or misses the boot timeout is killed and this master serves
//! on; once the new master serves, this one hands over its counters and stops, forwarding its
//! draining workers' counter operations. On the new side, counter operations go to the old
//! master until its workers serve, then wait for its state.

use std::collections::BTreeMap;

use crate::Policy;
use clustered_ipc::{CounterOp, Outcome};

use super::*;

fn upgrade_started(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|action| matches!(action, Action::StartUpgrade))
}

fn forwarded(actions: &[Action]) -> Vec<(WorkerKey, u64, &str, CounterOp)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::ForwardCounter {
                worker,
                seq,
                name,
                op,
            } => Some((*worker, *seq, name.as_str(), *op)),
            _ => None,
        })
        .collect()
}

fn add(by: i64) -> Message {
    Message::Counter {
        seq: 7,
        name: "hits".into(),
        op: CounterOp::Add(by),
    }
}

#[test]
fn an_upgrade_is_refused_while_another_runs_during_a_reload_and_before_the_cluster_serves() {
    let (mut h, _) = Harness::bound(config(1, Policy::Rr));
    let (reply, actions) = h.ask(Command::Upgrade);
    assert!(!upgrade_started(&actions), "not before every worker serves");
    assert!(matches!(answers(&actions)[..], [(r, Answer::Refused(_))] if r == reply));

    let (mut h, _) = Harness::running(1, Policy::Rr);
    let (_, actions) = h.ask(Command::Upgrade);
    assert!(upgrade_started(&actions));
    let (again, actions) = h.ask(Command::Upgrade);
    let [(r, Answer::Refused(why))] = answers(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(r, again);
    assert!(why.contains("under way already"), "{why}");

    let (mut h, _) = Harness::running(1, Policy::Rr);
    h.command(Command::Reload);
    let (_, actions) = h.ask(Command::Upgrade);
    let [(_, Answer::Refused(why))] = answers(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert!(why.contains("reload"), "{why}");
}

#[test]
fn a_new_master_that_misses_the_boot_timeout_is_killed_and_only_its_own_deadline_counts() {
    let (mut h, workers) = Harness::running(2, Policy::Rr);
    let (first, _) = h.ask(Command::Upgrade);
    // It exits at once: the answer says so, and it is cleaned up.
    let actions = h.feed(Input::UpgradeFailed {
        reason: "the new master (pid 9) exited: exit code 3".into(),
    });
    assert!(actions.iter().any(|a| matches!(a, Action::AbortUpgrade)));
    let [(r, Answer::Failed(why))] = answers(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(r, first);
    assert!(
        why.contains("exit code 3") && why.contains("keeps serving"),
        "{why}"
    );

    // The next one never serves: its own deadline fails it (the first one's is stale).
    h.advance(Duration::from_secs(30));
    let (second, _) = h.ask(Command::Upgrade);
    let actions = h.expire(&Timer::UpgradeDeadline { attempt: 1 });
    assert!(
        answers(&actions).is_empty(),
        "the first attempt's deadline is stale"
    );
    let actions = h.expire(&Timer::UpgradeDeadline { attempt: 2 });
    let [(r, Answer::Failed(why))] = answers(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(r, second);
    assert!(why.contains("boot timeout"), "{why}");
    assert!(
        kills(&actions).is_empty(),
        "its own workers serve on: {workers:?}"
    );
    assert!(!h.machine.is_stopping());
}

#[test]
fn once_the_new_master_serves_the_counters_go_over_and_the_draining_workers_forward_theirs() {
    let (mut h, workers) = Harness::running(1, Policy::Rr);
    h.message(workers[0], add(1000));
    let (reply, _) = h.ask(Command::Upgrade);
    let actions = h.feed(Input::NewMasterServing {
        old_pid: 10,
        new_pid: 20,
    });
    let handed: Vec<_> = actions
        .iter()
        .filter_map(|action| match action {
            Action::HandOver { counters } => Some(counters.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(handed, [BTreeMap::from([("hits".to_owned(), 1000)])]);
    let [(r, Answer::Done(done))] = answers(&actions)[..] else {
        panic!("{actions:?}")
    };
    assert_eq!((r, done.upgraded), (reply, Some((10, 20))));
    assert!(h.machine.is_stopping(), "it drains and exits");
    assert!(notices(&actions).contains(&&Notice::HandedOver { to: 20 }));

    // A draining worker's counter goes to the new master; its answer comes back to it.
    let actions = h.message(workers[0], add(1));
    assert_eq!(
        forwarded(&actions),
        [(workers[0], 7, "hits", CounterOp::Add(1))]
    );
    let actions = h.feed(Input::ForwardedCounter {
        worker: workers[0],
        seq: 7,
        outcome: Outcome::Ok(1001.into()),
    });
    let reply = Message::Reply {
        seq: 7,
        outcome: Outcome::Ok(1001.into()),
    };
    assert_eq!(sent(&actions), [(workers[0], &reply)]);
}

#[test]
fn a_new_master_forwards_counters_until_it_serves_then_waits_for_the_old_state() {
    let (mut h, actions) = Harness::bound(Config {
        upgrading: true,
        ..config(1, Policy::Rr)
    });
    let worker = spawns(&actions)[0].0;
    h.online(worker);
    // Before it serves: the old master's counters are the cluster's.
    let actions = h.message(worker, add(1));
    assert_eq!(
        forwarded(&actions),
        [(worker, 7, "hits", CounterOp::Add(1))]
    );
    h.listening(worker);
    // Serving now, the state not here yet: the operation waits.
    let actions = h.message(worker, add(2));
    assert!(
        forwarded(&actions).is_empty() && sent(&actions).is_empty(),
        "{actions:?}"
    );
    // The state arrives: the waiting operation counts on top of it.
    let actions = h.feed(Input::Adopt {
        counters: BTreeMap::from([("hits".to_owned(), 1001)]),
    });
    let reply = Message::Reply {
        seq: 7,
        outcome: Outcome::Ok(1003.into()),
    };
    assert!(sent(&actions).contains(&(worker, &reply)), "{actions:?}");
    // And the old master's draining workers' operations are applied here.
    let actions = h.feed(Input::ForeignCounter {
        id: 4,
        name: "hits".into(),
        op: CounterOp::Add(1),
    });
    let answered = actions.iter().any(|action| {
        matches!(action, Action::AnswerForeign { id: 4, outcome } if *outcome == Outcome::Ok(1004.into()))
    });
    assert!(answered, "{actions:?}");
}
