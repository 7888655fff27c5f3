//! The fleet (Redis): broadcasts published to the other masters, failed while Redis is
//! unreachable; counters done in Redis; the workers told whether Redis is reachable.

use crate::Policy;
use clustered_ipc::{CounterOp, Message, Outcome, Peer, Route};
use serde_json::json;

use super::*;
use crate::master::machine::{FleetAction, FleetInput};

fn fleet_running() -> (Harness, Vec<WorkerKey>) {
    Harness::running_with(Config {
        fleet: true,
        ..config(2, Policy::Rr)
    })
}

fn broadcast(seq: u64) -> Message {
    Message::User {
        to: Route::All,
        data: json!("hi"),
        seq: Some(seq),
    }
}

fn fleet_actions(actions: &[Action]) -> Vec<&FleetAction> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Fleet(fleet) => Some(fleet),
            _ => None,
        })
        .collect()
}

fn replies(actions: &[Action]) -> Vec<(WorkerKey, &Outcome)> {
    sent(actions)
        .into_iter()
        .filter_map(|(worker, message)| match message {
            Message::Reply { outcome, .. } => Some((worker, outcome)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_broadcast_fails_while_redis_is_down_and_is_published_once_it_is_up() {
    let (mut h, w) = fleet_running();
    let actions = h.message(w[0], broadcast(1));
    assert!(delivered(&actions).is_empty(), "delivered with Redis down");
    assert!(fleet_actions(&actions).is_empty());
    assert!(matches!(replies(&actions)[..], [(to, Outcome::Error(_))] if to == w[0]));

    let actions = h.feed(Input::Fleet(FleetInput::Up(true)));
    let told: Vec<_> = sent(&actions)
        .into_iter()
        .filter(|(_, message)| matches!(message, Message::FleetStatus { up: true }))
        .collect();
    assert_eq!(told.len(), 2, "every worker hears that Redis is up");

    let actions = h.message(w[0], broadcast(2));
    assert_eq!(delivered(&actions).len(), 2);
    assert_eq!(
        fleet_actions(&actions),
        [&FleetAction::Publish { data: json!("hi") }]
    );
    // A local broadcast never goes to the fleet.
    let local = Message::User {
        to: Route::AllLocal,
        data: json!("here"),
        seq: None,
    };
    let actions = h.message(w[0], local);
    assert_eq!(delivered(&actions).len(), 2);
    assert!(fleet_actions(&actions).is_empty());
}

#[test]
fn another_masters_broadcast_reaches_every_worker() {
    let (mut h, _w) = fleet_running();
    let actions = h.feed(Input::Fleet(FleetInput::Message { data: json!(5) }));
    let expected = Message::Deliver {
        from: Peer::Fleet,
        data: json!(5),
    };
    assert_eq!(delivered(&actions).len(), 2);
    assert!(delivered(&actions).iter().all(|(_, m)| **m == expected));
}

#[test]
fn counters_are_done_in_redis_and_fail_at_once_while_it_is_down() {
    let (mut h, w) = fleet_running();
    let add = Message::Counter {
        seq: 3,
        name: "hits".into(),
        op: CounterOp::Add(1),
    };
    let actions = h.message(w[0], add.clone());
    assert!(fleet_actions(&actions).is_empty());
    assert!(matches!(replies(&actions)[..], [(_, Outcome::Error(_))]));

    h.feed(Input::Fleet(FleetInput::Up(true)));
    let actions = h.message(w[0], add);
    assert!(replies(&actions).is_empty(), "answered before Redis did");
    assert_eq!(
        fleet_actions(&actions),
        [&FleetAction::Counter {
            worker: w[0],
            seq: 3,
            name: "hits".into(),
            op: CounterOp::Add(1),
        }]
    );
    let outcome = Outcome::Ok(json!(7));
    let reply = FleetInput::Reply {
        worker: w[0],
        seq: 3,
        outcome: outcome.clone(),
    };
    let actions = h.feed(Input::Fleet(reply));
    assert_eq!(replies(&actions), [(w[0], &outcome)]);
}

#[test]
fn a_fleet_counter_change_is_pushed_to_subscribers() {
    let (mut h, w) = fleet_running();
    h.feed(Input::Fleet(FleetInput::Up(true)));
    let subscribe = Message::Counter {
        seq: 1,
        name: "hits".into(),
        op: CounterOp::Subscribe,
    };
    h.message(w[1], subscribe);
    let change = FleetInput::CounterValue {
        name: "hits".into(),
        value: 42,
    };
    h.feed(Input::Fleet(change));
    let (_, actions) = h.run_until(&Timer::PushCounters);
    let pushed = Message::CounterValue {
        name: "hits".into(),
        value: 42,
    };
    assert_eq!(delivered(&actions), [(w[1], &pushed)]);
}
