//! User messages relayed by the master, and counters.

use crate::Policy;
use clustered_ipc::{CounterOp, Message, Outcome, Peer, Route};
use serde_json::json;

use super::*;
use crate::master::command::{Command, Target};

fn reply_outcome(actions: &[Action], to: WorkerKey) -> Option<&Outcome> {
    sent(actions)
        .into_iter()
        .find_map(|(worker, message)| match message {
            Message::Reply { outcome, .. } if worker == to => Some(outcome),
            _ => None,
        })
}

#[test]
fn a_broadcast_reaches_every_live_worker_but_not_a_stopping_one() {
    let (mut h, w) = Harness::running(3, Policy::Rr);
    h.command(Command::Disconnect(w[2]));
    let user = Message::User {
        to: Route::All,
        data: json!("hi"),
        seq: Some(4),
    };
    let actions = h.message(w[0], user);
    let expected = Message::Deliver {
        from: Peer::Worker(1),
        data: json!("hi"),
    };
    assert_eq!(delivered(&actions), [(w[0], &expected), (w[1], &expected)]);
    assert_eq!(
        reply_outcome(&actions, w[0]),
        Some(&Outcome::Ok(json!(null)))
    );
}

#[test]
fn a_message_to_one_slot_is_delivered_there_or_answered_with_an_error() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let to = |slot| Message::User {
        to: Route::Worker(slot),
        data: json!(7),
        seq: Some(1),
    };
    let actions = h.message(w[0], to(2));
    assert_eq!(delivered(&actions).len(), 1);
    assert_eq!(delivered(&actions)[0].0, w[1]);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Deliver { receipt: Some((from, 1)), .. } if *from == w[0]
        )),
        "the receipt waits for the queue"
    );
    assert_eq!(reply_outcome(&actions, w[0]), None);
    let actions = h.message(w[0], to(9));
    assert!(delivered(&actions).is_empty());
    assert_eq!(
        reply_outcome(&actions, w[0]),
        Some(&Outcome::Error("no live worker 9".into()))
    );
}

#[test]
fn master_code_reaches_one_worker_or_all() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let one = Command::Deliver {
        to: Target::One(w[1]),
        data: json!("you"),
    };
    let actions = h.command(one);
    let expected = Message::Deliver {
        from: Peer::Master,
        data: json!("you"),
    };
    assert_eq!(delivered(&actions), [(w[1], &expected)]);
    let all = Command::Deliver {
        to: Target::All,
        data: json!("all"),
    };
    assert_eq!(delivered(&h.command(all)).len(), 2);
}

#[test]
fn counters_answer_publish_and_push_changes_to_followers_coalesced() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let counter = |seq, op| Message::Counter {
        seq,
        name: "hits".into(),
        op,
    };
    let actions = h.message(w[1], counter(1, CounterOp::Subscribe));
    assert_eq!(reply_outcome(&actions, w[1]), Some(&Outcome::Ok(json!(0))));
    let actions = h.message(w[0], counter(2, CounterOp::Add(5)));
    assert_eq!(reply_outcome(&actions, w[0]), Some(&Outcome::Ok(json!(5))));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::PublishCounter { name, value: 5 } if name == "hits"
    )));
    assert_eq!(
        h.newly_armed(),
        [(Duration::from_millis(50), Timer::PushCounters)]
    );
    let actions = h.message(w[0], counter(3, CounterOp::Add(i64::MAX)));
    assert!(h.newly_armed().is_empty(), "one push is already due");
    assert_eq!(
        reply_outcome(&actions, w[0]),
        Some(&Outcome::Ok(json!(i64::MAX))),
        "saturates"
    );
    let actions = h.expire(&Timer::PushCounters);
    let pushed = Message::CounterValue {
        name: "hits".into(),
        value: i64::MAX,
    };
    assert_eq!(
        delivered(&actions),
        [(w[1], &pushed)],
        "followers only, latest value"
    );
}

#[test]
fn a_worker_choosing_endless_counter_names_is_refused_past_its_share() {
    use super::super::counters::{MAX_CREATED_PER_WORKER, MAX_NAME_LEN};
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let add = |seq: u64, name: String| Message::Counter {
        seq,
        name,
        op: CounterOp::Add(1),
    };
    let mut refused = 0;
    for n in 0..10_000u64 {
        let actions = h.message(w[0], add(n, format!("name-{n}")));
        if let Some(Outcome::Error(reason)) = reply_outcome(&actions, w[0]) {
            assert!(reason.contains("created 1024 counters"), "{reason}");
            refused += 1;
        }
    }
    assert_eq!(refused, 10_000 - MAX_CREATED_PER_WORKER);
    // Existing counters still count, reads create nothing, other workers have their own share.
    let actions = h.message(w[0], add(1, "name-7".into()));
    assert_eq!(reply_outcome(&actions, w[0]), Some(&Outcome::Ok(json!(2))));
    let get = Message::Counter {
        seq: 2,
        name: "never-made".into(),
        op: CounterOp::Get,
    };
    assert_eq!(
        reply_outcome(&h.message(w[0], get), w[0]),
        Some(&Outcome::Ok(json!(0)))
    );
    let actions = h.message(w[1], add(3, "theirs".into()));
    assert_eq!(reply_outcome(&actions, w[1]), Some(&Outcome::Ok(json!(1))));
    let long = "x".repeat(MAX_NAME_LEN + 1);
    let actions = h.message(w[1], add(4, long));
    assert!(matches!(
        reply_outcome(&actions, w[1]),
        Some(Outcome::Error(_))
    ));
}
