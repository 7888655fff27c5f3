//! Which worker gets each connection, and what its answer means.

use crate::Policy;
use clustered_ipc::{Message, WireError};

use super::super::workers::HANDOFF_WINDOW;
use super::*;

#[test]
fn rr_hands_connections_to_the_listening_workers_in_slot_order() {
    let (mut h, w) = Harness::running(3, Policy::Rr);
    let mut order = Vec::new();
    for _ in 0..6 {
        let (_, actions) = h.connect();
        let [(worker, _, _)] = handoffs(&actions)[..] else {
            panic!("one handoff: {actions:?}")
        };
        order.push(worker);
    }
    assert_eq!(order, [w[0], w[1], w[2], w[0], w[1], w[2]]);
}

#[test]
fn a_worker_whose_window_is_full_is_skipped_until_it_acknowledges() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    // Worker 2 answers nothing: after its window fills, every connection goes to worker 1.
    let mut to_second = Vec::new();
    for _ in 0..(HANDOFF_WINDOW * 2 + 10) {
        let (_, actions) = h.connect();
        let (worker, seq, _) = handoffs(&actions)[0];
        if worker == w[0] {
            h.accepted(worker, seq, true);
        } else {
            to_second.push(seq);
        }
    }
    assert_eq!(to_second.len(), HANDOFF_WINDOW);
    // One acknowledgement makes room for exactly one more.
    h.accepted(w[1], to_second[0], true);
    let turns: Vec<WorkerKey> = (0..4).map(|_| handoffs(&h.connect().1)[0].0).collect();
    assert_eq!(turns.iter().filter(|worker| **worker == w[1]).count(), 1);
}

#[test]
fn with_every_window_full_connections_wait_in_order_and_acknowledgements_release_them() {
    let (mut h, w) = Harness::running(1, Policy::Rr);
    let mut seqs = Vec::new();
    for _ in 0..HANDOFF_WINDOW {
        seqs.push(handoffs(&h.connect().1)[0].1);
    }
    let (first_waiting, actions) = h.connect();
    assert!(handoffs(&actions).is_empty(), "the window is full");
    let (second_waiting, _) = h.connect();
    let actions = h.accepted(w[0], seqs[0], true);
    assert_eq!(
        closed_conns(&actions).len(),
        1,
        "the acknowledged copy is closed"
    );
    let released: Vec<ConnId> = handoffs(&actions).iter().map(|(_, _, id)| *id).collect();
    assert_eq!(released, [first_waiting]);
    let actions = h.accepted(w[0], seqs[1], true);
    assert_eq!(handoffs(&actions)[0].2, second_waiting);
}

#[test]
fn connections_wait_until_a_worker_listens() {
    let (mut h, actions) = Harness::bound(config(1, Policy::Rr));
    let worker = spawns(&actions)[0].0;
    let (conn, actions) = h.connect();
    assert!(handoffs(&actions).is_empty());
    let actions = h.bring_up(worker);
    assert_eq!(handoffs(&actions), [(worker, 1, conn)]);
}

#[test]
fn an_acknowledgement_closes_the_masters_copy_and_only_that() {
    let (mut h, w) = Harness::running(1, Policy::Rr);
    let (conn, actions) = h.connect();
    let (_, seq, _) = handoffs(&actions)[0];
    let actions = h.accepted(w[0], seq, true);
    assert_eq!(closed_conns(&actions), [conn]);
    assert!(handoffs(&actions).is_empty());
}

#[test]
fn a_handoff_taken_in_the_ring_is_as_acknowledged_and_leaves_the_in_flight_list() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (first, actions) = h.connect();
    let (to_first, first_seq, _) = handoffs(&actions)[0];
    let (_, actions) = h.connect();
    let (to_second, second_seq, _) = handoffs(&actions)[0];
    let mut in_flight: Vec<(WorkerKey, u64)> = h.machine.unacknowledged_handoffs().collect();
    in_flight.sort();
    assert_eq!(in_flight, [(to_first, first_seq), (to_second, second_seq)]);
    assert_eq!([to_first, to_second], [w[0], w[1]]);
    let actions = h.feed(Input::Taken {
        worker: to_first,
        seq: first_seq,
    });
    assert_eq!(
        closed_conns(&actions),
        [first],
        "the master's copy is closed"
    );
    let in_flight: Vec<(WorkerKey, u64)> = h.machine.unacknowledged_handoffs().collect();
    assert_eq!(in_flight, [(to_second, second_seq)]);
    // Read from the ring again (or answered by a frame as well): nothing more happens.
    let again = Input::Taken {
        worker: to_first,
        seq: first_seq,
    };
    assert!(closed_conns(&h.feed(again)).is_empty());
    assert!(h.accepted(to_first, first_seq, true).is_empty());
}

#[test]
fn an_acknowledgement_of_an_unknown_or_repeated_seq_is_ignored() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (_, actions) = h.connect();
    let (worker, seq, _) = handoffs(&actions)[0];
    assert!(h.accepted(worker, 999, true).is_empty());
    assert!(
        h.refused(worker, 999, true).is_empty(),
        "no made-up refusal"
    );
    h.accepted(worker, seq, true);
    assert!(h.accepted(worker, seq, true).is_empty(), "no second close");
    // The other worker cannot acknowledge a handoff it never got.
    let other = if worker == w[0] { w[1] } else { w[0] };
    let (_, actions) = h.connect();
    let (to, seq, _) = handoffs(&actions)[0];
    assert_eq!(to, other);
    assert!(h.accepted(worker, seq, true).is_empty());
}

#[test]
fn a_draining_refusal_leaves_the_worker_out_and_the_connection_goes_to_another() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (conn, actions) = h.connect();
    let (first, seq, _) = handoffs(&actions)[0];
    assert_eq!(first, w[0]);
    let actions = h.refused(first, seq, true);
    assert_eq!(handoffs(&actions), [(w[1], 1, conn)]);
    assert!(
        closed_conns(&actions).is_empty(),
        "the master still holds it"
    );
    assert!(h.newly_armed().is_empty(), "nothing to wait for");
    for _ in 0..3 {
        assert_eq!(
            handoffs(&h.connect().1)[0].0,
            w[1],
            "the refuser gets no more"
        );
    }
}

#[test]
fn a_busy_refusal_moves_only_that_connection_and_the_worker_rests_a_moment() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (conn, actions) = h.connect();
    let (first, seq, _) = handoffs(&actions)[0];
    let actions = h.refused(first, seq, false);
    assert_eq!(handoffs(&actions), [(w[1], 1, conn)]);
    let rest = Timer::Rested { worker: first };
    assert_eq!(h.newly_armed(), [(Duration::from_millis(50), rest.clone())]);
    assert_eq!(handoffs(&h.connect().1)[0].0, w[1], "resting");
    h.expire(&rest);
    let turns: Vec<WorkerKey> = (0..2).map(|_| handoffs(&h.connect().1)[0].0).collect();
    assert!(turns.contains(&first), "back in the rotation: {turns:?}");
}

#[test]
fn when_every_worker_is_busy_the_connection_waits_for_a_rested_one_without_spinning() {
    let (mut h, w) = Harness::running(1, Policy::Rr);
    let (conn, actions) = h.connect();
    let (_, seq, _) = handoffs(&actions)[0];
    let actions = h.refused(w[0], seq, false);
    assert!(handoffs(&actions).is_empty(), "not handed straight back");
    let actions = h.expire(&Timer::Rested { worker: w[0] });
    assert_eq!(handoffs(&actions)[0].2, conn);
}

#[test]
fn a_dead_workers_unacknowledged_connections_go_to_others_once_it_has_exited() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let mut to_first = Vec::new();
    for _ in 0..6 {
        let (conn, actions) = h.connect();
        let (worker, seq, _) = handoffs(&actions)[0];
        if worker == w[0] {
            to_first.push(conn);
        } else {
            h.accepted(worker, seq, true);
        }
    }
    let actions = h.feed(Input::ChannelClosed {
        worker: w[0],
        error: None,
    });
    // Its process may still serve one whose acknowledgement was lost with the channel.
    assert!(handoffs(&actions).is_empty(), "not while it may still run");
    assert_eq!(handoffs(&h.connect().1)[0].0, w[1], "it gets nothing new");
    let actions = h.exited(w[0], ProcessExit::Signal(9));
    let moved: Vec<(WorkerKey, ConnId)> = handoffs(&actions)
        .iter()
        .map(|(worker, _, conn)| (*worker, *conn))
        .collect();
    assert_eq!(
        moved,
        to_first
            .iter()
            .map(|conn| (w[1], *conn))
            .collect::<Vec<_>>()
    );
    assert!(closed_conns(&actions).is_empty());
    // Its late news changes nothing.
    assert!(h.accepted(w[0], 1, true).is_empty());
}

#[test]
fn a_handoff_that_cannot_be_queued_goes_to_another_and_the_worker_rests_a_moment() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (conn, actions) = h.connect();
    let (first, seq, _) = handoffs(&actions)[0];
    let actions = h.feed(Input::HandoffFailed { worker: first, seq });
    assert_eq!(handoffs(&actions)[0].0, w[1]);
    assert_eq!(handoffs(&actions)[0].2, conn);
    for _ in 0..3 {
        assert_eq!(handoffs(&h.connect().1)[0].0, w[1]);
    }
    h.expire(&Timer::Rested { worker: first });
    let turns: Vec<WorkerKey> = (0..2).map(|_| handoffs(&h.connect().1)[0].0).collect();
    assert!(turns.contains(&first), "rested, it takes connections again");
}

#[test]
fn sticky_keeps_a_client_on_its_worker_and_waits_for_it_rather_than_move() {
    let (mut h, _) = Harness::running(3, Policy::Sticky);
    let (_, actions) = h.connect_from("10.1.2.3:1000");
    let (owner, _, _) = handoffs(&actions)[0];
    for port in 1001..1001 + HANDOFF_WINDOW as u16 - 1 {
        let (_, actions) = h.connect_from(&format!("10.1.2.3:{port}"));
        assert_eq!(handoffs(&actions)[0].0, owner);
    }
    // Its window is full: the client waits for its own worker.
    let (_, actions) = h.connect_from("10.1.2.3:2000");
    assert!(handoffs(&actions).is_empty());
    // ...without holding up clients of other workers.
    let other_client = (1..=255u8)
        .map(|n| format!("10.9.9.{n}:80"))
        .find(|peer| {
            let mut probe = Harness::running(3, Policy::Sticky).0;
            handoffs(&probe.connect_from(peer).1)[0].0 != owner
        })
        .expect("some client belongs to another worker");
    let (_, actions) = h.connect_from(&other_client);
    assert_ne!(handoffs(&actions)[0].0, owner);
}

#[test]
fn sticky_moves_only_a_dead_workers_clients_and_back_to_its_replacement() {
    let (mut h, w) = Harness::running(3, Policy::Sticky);
    let clients: Vec<String> = (1..=60u8).map(|n| format!("10.0.0.{n}:80")).collect();
    let mut owners = Vec::new();
    for client in &clients {
        let (_, actions) = h.connect_from(client);
        let (worker, seq, _) = handoffs(&actions)[0];
        h.accepted(worker, seq, true);
        owners.push(worker);
    }
    let victim = w[1];
    assert!(owners.contains(&victim) && owners.iter().any(|o| *o != victim));
    h.feed(Input::ChannelClosed {
        worker: victim,
        error: None,
    });
    h.exited(victim, ProcessExit::Signal(9));
    let (_, timer) = h.newly_armed()[0].clone();
    assert_eq!(timer, Timer::RestartDue { slot: 2 });
    for (client, owner) in clients.iter().zip(&owners) {
        let (_, actions) = h.connect_from(client);
        let (worker, seq, _) = handoffs(&actions)[0];
        h.accepted(worker, seq, true);
        if *owner == victim {
            assert_ne!(worker, victim);
        } else {
            assert_eq!(worker, *owner, "{client} moved although its worker lives");
        }
    }
    let actions = h.expire(&Timer::RestartDue { slot: 2 });
    let (replacement, slot) = spawns(&actions)[0];
    assert_eq!(slot, 2);
    h.bring_up(replacement);
    for (client, owner) in clients.iter().zip(&owners) {
        let (_, actions) = h.connect_from(client);
        let (worker, seq, _) = handoffs(&actions)[0];
        h.accepted(worker, seq, true);
        let expected = if *owner == victim {
            replacement
        } else {
            *owner
        };
        assert_eq!(worker, expected, "{client}");
    }
}

#[test]
fn least_picks_the_lowest_reported_load_counting_unacknowledged_handoffs() {
    let (mut h, w) = Harness::running(3, Policy::Least);
    // Said in memory and in frames alike; the last report counts.
    h.feed(Input::Beat {
        worker: w[1],
        load: LoadReport {
            conns: 9,
            ..LoadReport::default()
        },
    });
    h.message(
        w[0],
        Message::Heartbeat {
            conns: 5,
            inflight: 5,
            served: 0,
            rss: 0,
        },
    );
    h.feed(Input::Beat {
        worker: w[1],
        load: LoadReport {
            conns: 2,
            inflight: 1,
            ..LoadReport::default()
        },
    });
    h.message(
        w[2],
        Message::Heartbeat {
            conns: 4,
            inflight: 0,
            served: 0,
            rss: 0,
        },
    );
    let picks: Vec<WorkerKey> = (0..3).map(|_| handoffs(&h.connect().1)[0].0).collect();
    // Loads 10, 3, 4: worker 2 (3, then 4 with one unacknowledged), then the tie by slot.
    assert_eq!(picks, [w[1], w[1], w[2]]);
}

#[test]
fn a_heartbeat_with_absurd_numbers_saturates_instead_of_overflowing() {
    let (mut h, w) = Harness::running(2, Policy::Least);
    let huge = Message::Heartbeat {
        conns: u64::MAX,
        inflight: u64::MAX,
        served: 0,
        rss: 0,
    };
    h.message(w[0], huge);
    let (_, actions) = h.connect();
    assert_eq!(handoffs(&actions)[0].0, w[1]);
}

#[test]
fn a_channel_closed_by_a_protocol_violation_kills_the_worker() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let error = WireError::MalformedFrame {
        reason: "garbage".into(),
    };
    let actions = h.feed(Input::ChannelClosed {
        worker: w[0],
        error: Some(error),
    });
    assert_eq!(kills(&actions), [w[0]]);
    let actions = h.feed(Input::ChannelClosed {
        worker: w[1],
        error: None,
    });
    assert!(kills(&actions).is_empty(), "a clean close is no violation");
    // Gone on its own before the kill landed (its channel closed): its exit still says why.
    let actions = h.exited(w[0], ProcessExit::Code(0));
    assert!(
        notices(&actions).iter().any(|notice| matches!(
            notice,
            Notice::Exit {
                reason: ExitReason::Protocol,
                ..
            }
        )),
        "{actions:?}"
    );
}
