//! The agent: started before the workers, restarted alone, replaced first and never doubled in
//! a reload, refused an address, and the relay of workers' requests to it.

use crate::Policy;
use clustered_ipc::{Message, Outcome};

use super::*;
use crate::master::machine::SignalAction;

fn with_agent(workers: usize) -> Config {
    Config {
        agent: true,
        ..config(workers, Policy::Rr)
    }
}

fn online(h: &mut Harness, worker: WorkerKey) -> Vec<Action> {
    h.online(worker)
}

/// A cluster with its agent online and its workers listening: (agent, workers).
fn running_with_agent(workers: usize) -> (Harness, WorkerKey, Vec<WorkerKey>) {
    let (mut h, actions) = Harness::bound(with_agent(workers));
    let agent = spawns(&actions)[0].0;
    let actions = online(&mut h, agent);
    let keys: Vec<WorkerKey> = spawns(&actions).iter().map(|(key, _)| *key).collect();
    for key in &keys {
        h.bring_up(*key);
    }
    (h, agent, keys)
}

fn replies(actions: &[Action], to: WorkerKey) -> Vec<&Outcome> {
    sent(actions)
        .into_iter()
        .filter_map(|(worker, message)| match message {
            Message::Reply { outcome, .. } if worker == to => Some(outcome),
            _ => None,
        })
        .collect()
}

#[test]
fn the_agent_starts_first_and_the_workers_once_it_is_ready() {
    let (mut h, actions) = Harness::bound(with_agent(2));
    let [(agent, 0)] = spawns(&actions)[..] else {
        panic!("the agent alone first: {actions:?}")
    };
    assert!(spawns(&h.spawned(agent)).is_empty());
    let actions = online(&mut h, agent);
    assert!(notices(&actions).contains(&&Notice::AgentReady(agent)));
    let slots: Vec<usize> = spawns(&actions).iter().map(|(_, slot)| *slot).collect();
    assert_eq!(slots, [1, 2]);
    // Asked for an address, the agent is refused.
    let actions = h.message(
        agent,
        Message::QueryServer {
            seq: 7,
            address: ADDRESS.into(),
        },
    );
    assert!(
        matches!(sent(&actions)[..], [(to, Message::ServerError { seq: 7, .. })] if to == agent)
    );
}

#[test]
fn a_dead_agent_is_restarted_alone_and_its_unanswered_requests_fail() {
    let (mut h, agent, workers) = running_with_agent(2);
    let actions = h.message(
        workers[0],
        Message::AgentRequest {
            seq: 3,
            data: "ticks".into(),
        },
    );
    let [(to, Message::AgentAsk { id, from: 1, .. })] = sent(&actions)[..] else {
        panic!("relayed to the agent: {actions:?}")
    };
    assert_eq!(to, agent);
    let id = *id;
    let actions = h.exited(agent, ProcessExit::Signal(9));
    let [Outcome::Error(reason)] = &replies(&actions, workers[0])[..] else {
        panic!("{actions:?}")
    };
    assert!(reason.contains("agent exited"), "{reason}");
    assert!(
        h.newly_armed()
            .iter()
            .any(|(_, t)| *t == Timer::RestartDue { slot: 0 })
    );
    assert!(
        kills(&actions).is_empty() && spawns(&actions).is_empty(),
        "workers untouched"
    );
    // While none runs, requests fail at once; a late answer of the dead one goes nowhere.
    let actions = h.message(
        workers[1],
        Message::AgentRequest {
            seq: 4,
            data: "ticks".into(),
        },
    );
    assert!(matches!(
        replies(&actions, workers[1])[..],
        [Outcome::Error(_)]
    ));
    assert!(
        h.message(
            agent,
            Message::AgentAnswer {
                id,
                outcome: Outcome::Ok(1.into())
            }
        )
        .is_empty()
    );
    let actions = h.expire(&Timer::RestartDue { slot: 0 });
    let [(successor, 0)] = spawns(&actions)[..] else {
        panic!("{actions:?}")
    };
    online(&mut h, successor);
    let actions = h.message(
        workers[1],
        Message::AgentRequest {
            seq: 5,
            data: "ticks".into(),
        },
    );
    let [(_, Message::AgentAsk { id, .. })] = sent(&actions)[..] else {
        panic!("{actions:?}")
    };
    let id = *id;
    let actions = h.message(
        successor,
        Message::AgentAnswer {
            id,
            outcome: Outcome::Ok(9.into()),
        },
    );
    assert_eq!(replies(&actions, workers[1]), [&Outcome::Ok(9.into())]);
}

#[test]
fn a_reload_replaces_the_agent_first_never_running_two() {
    let (mut h, agent, workers) = running_with_agent(1);
    let actions = h.feed(Input::Signal(SignalAction::Reload("SIGHUP")));
    assert!(
        spawns(&actions).is_empty(),
        "no second agent while the first runs"
    );
    assert!(sent(&actions).contains(&(agent, &Message::Disconnect)));
    let actions = h.exited(agent, ProcessExit::Code(0));
    let [(successor, 0)] = spawns(&actions)[..] else {
        panic!("the successor once the old one is gone: {actions:?}")
    };
    let actions = online(&mut h, successor);
    let [(worker, 1)] = spawns(&actions)[..] else {
        panic!("then slot 1: {actions:?}")
    };
    let actions = h.bring_up(worker);
    assert!(sent(&actions).contains(&(workers[0], &Message::Disconnect)));
    assert_eq!(notices(&actions).last(), Some(&&Notice::ReloadFinished));
}

#[test]
fn without_an_agent_a_request_for_it_fails_saying_so() {
    let (mut h, workers) = Harness::running(1, Policy::Rr);
    let actions = h.message(
        workers[0],
        Message::AgentRequest {
            seq: 1,
            data: "x".into(),
        },
    );
    let [Outcome::Error(reason)] = &replies(&actions, workers[0])[..] else {
        panic!("{actions:?}")
    };
    assert!(reason.contains("no agent"), "{reason}");
}

#[test]
fn past_its_unanswered_limit_the_agent_is_not_asked_more() {
    use crate::master::machine::agent_requests::MAX_UNANSWERED;
    let (mut h, agent, workers) = running_with_agent(1);
    for seq in 0..MAX_UNANSWERED as u64 {
        let actions = h.message(
            workers[0],
            Message::AgentRequest {
                seq,
                data: "x".into(),
            },
        );
        assert_eq!(sent(&actions)[0].0, agent);
    }
    let seq = MAX_UNANSWERED as u64;
    let actions = h.message(
        workers[0],
        Message::AgentRequest {
            seq,
            data: "x".into(),
        },
    );
    let [Outcome::Error(reason)] = &replies(&actions, workers[0])[..] else {
        panic!("{actions:?}")
    };
    assert!(reason.contains("overloaded"), "{reason}");
}

#[test]
fn an_agent_stopped_from_outside_gets_its_successor_even_when_it_had_to_be_killed() {
    let (mut h, agent, _) = running_with_agent(1);
    let (_, actions) = h.ask(crate::master::command::Command::Restart(0));
    assert!(spawns(&actions).is_empty(), "one agent at a time");
    let actions = h.expire(&Timer::DisconnectTimeout { worker: agent });
    assert_eq!(kills(&actions), [agent]);
    let actions = h.exited(agent, ProcessExit::Signal(9));
    assert!(notices(&actions).iter().any(|n| matches!(
        n,
        Notice::Exit {
            reason: ExitReason::DrainTimeout,
            ..
        }
    )));
    assert_eq!(
        spawns(&actions)
            .iter()
            .map(|(_, slot)| *slot)
            .collect::<Vec<_>>(),
        [0],
        "its successor starts at once: {actions:?}"
    );
}
