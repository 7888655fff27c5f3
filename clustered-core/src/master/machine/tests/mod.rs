//! Unit tests of the master's decisions: a [`Machine`] fed inputs by hand, with a made-up clock,
//! and what it answers checked action by action. No process, socket or task is involved.

/// The values `$value` of the actions that match `$pattern`, in order.
macro_rules! picked {
    ($actions:expr, $pattern:pat => $value:expr) => {
        $actions
            .iter()
            .filter_map(|action| match action {
                $pattern => Some($value),
                _ => None,
            })
            .collect()
    };
}

mod agent;
mod answers;
mod certificates;
mod fleet;
mod handles;
mod handoffs;
mod lifecycle;
mod liveness;
mod messaging;
mod readiness;
mod recycling;
mod reloading;
mod scaling;
mod shutdown;
mod upgrading;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::Policy;
use clustered_ipc::{ListenAddr, ListenKey, Message, PROTOCOL_VERSION};

use super::restart::RestartPolicy;
use super::{Action, Config, Conn, Input, Machine, Notice, Recycle, ReplyId, Timer};
use crate::handoff_acks::LoadReport;
use crate::master::command::{Answer, Command};

/// The seed of every test machine's randomness: the same jitter on every run.
const SEED: u64 = 7;
use crate::master::ids::{ConnId, WorkerKey};
use crate::master::process_exit::{ExitReason, ProcessExit};

/// The address every test cluster listens on.
const ADDRESS: &str = "127.0.0.1:4000";

fn key() -> ListenKey {
    ListenKey::from(ADDRESS)
}

fn bound() -> ListenAddr {
    ListenAddr::Tcp(ADDRESS.parse().unwrap())
}

fn config(workers: usize, policy: Policy) -> Config {
    Config {
        worker_count: workers,
        policy,
        addresses: vec![ADDRESS.to_owned()],
        shutdown_timeout: Duration::from_secs(30),
        reload_timeout: Duration::from_secs(30),
        reload_batch: 1,
        restart: RestartPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            min_uptime: Duration::from_secs(1),
            max_restarts: 3,
        },
        hang_timeout: Some(Duration::from_secs(5)),
        boot_timeout: Duration::from_secs(60),
        agent: false,
        wait_ready: false,
        recycle: Recycle::default(),
        upgrading: false,
        fleet: false,
    }
}

/// A machine, the fake clock, the pids handed out, and the workers that keep their
/// heartbeats going while time passes.
struct Harness {
    machine: Machine,
    now: Instant,
    next_pid: u32,
    next_conn: u64,
    next_reply: u64,
    /// Joined and not silenced nor exited: they beat before every deadline.
    beating: BTreeSet<WorkerKey>,
    /// What the last input armed, with how long until each is due.
    armed_by_last: Vec<(Duration, Timer)>,
}

impl Harness {
    fn new(config: Config) -> Self {
        let now = Instant::now();
        Self {
            machine: Machine::new(config, now, SEED),
            now,
            next_pid: 1000,
            next_conn: 0,
            next_reply: 0,
            beating: BTreeSet::new(),
            armed_by_last: Vec::new(),
        }
    }

    /// A cluster of `workers` whose workers all listen; returns their keys by slot.
    fn running(workers: usize, policy: Policy) -> (Self, Vec<WorkerKey>) {
        Self::running_with(config(workers, policy))
    }

    fn running_with(config: Config) -> (Self, Vec<WorkerKey>) {
        let (mut harness, actions) = Self::bound(config);
        let keys: Vec<WorkerKey> = spawns(&actions).iter().map(|(key, _)| *key).collect();
        for key in &keys {
            harness.bring_up(*key);
        }
        (harness, keys)
    }

    /// A cluster whose address is bound, its workers not started yet; returns what the bind
    /// led to (the spawns).
    fn bound(config: Config) -> (Self, Vec<Action>) {
        let mut harness = Self::new(config);
        let actions = harness.feed(Input::Start);
        assert_eq!(binds(&actions), [ADDRESS]);
        let actions = harness.feed(Input::Bound {
            address: ADDRESS.to_owned(),
            result: Ok(bound()),
        });
        (harness, actions)
    }

    fn feed(&mut self, input: Input) -> Vec<Action> {
        let before: BTreeSet<(Instant, Timer)> = self.armed_at().collect();
        let actions: Vec<Action> = self.machine.handle(input, self.now).collect();
        let now = self.now;
        self.armed_by_last = self
            .armed_at()
            .filter(|armed| !before.contains(armed))
            .map(|(at, timer)| (at - now, timer))
            .collect();
        actions
    }

    fn armed_at(&self) -> impl Iterator<Item = (Instant, Timer)> + '_ {
        self.machine
            .timers
            .iter()
            .map(|(at, timer)| (at, timer.clone()))
    }

    /// Every timer armed now, with how long until it is due, earliest first.
    fn armed(&self) -> Vec<(Duration, Timer)> {
        self.armed_at()
            .map(|(at, timer)| (at - self.now, timer))
            .collect()
    }

    /// The timers the last input armed, with how long until each is due.
    fn newly_armed(&self) -> Vec<(Duration, Timer)> {
        self.armed_by_last.clone()
    }

    /// Time passes by `by`: every deadline on the way expires, in order, and before each the
    /// beating workers send a heartbeat. Returns what that led to.
    fn advance(&mut self, by: Duration) -> Vec<Action> {
        let until = self.now + by;
        let mut actions = Vec::new();
        while let Some(deadline) = self.machine.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(deadline);
            for worker in self.beating.clone() {
                actions.extend(self.message(worker, heartbeat()));
            }
            actions.extend(self.feed(Input::Timeout));
        }
        self.now = until;
        actions
    }

    /// Time passes until `timer` expires (it must be armed); returns what happened on the way,
    /// and how long it took.
    fn run_until(&mut self, timer: &Timer) -> (Duration, Vec<Action>) {
        let Some((left, _)) = self.armed().into_iter().find(|(_, armed)| armed == timer) else {
            panic!("{timer:?} is not armed: {:?}", self.armed())
        };
        (left, self.advance(left))
    }

    /// [`Harness::run_until`], the actions only.
    fn expire(&mut self, timer: &Timer) -> Vec<Action> {
        self.run_until(timer).1
    }

    /// The worker stops sending heartbeats (blocked, or stopped).
    fn silence(&mut self, worker: WorkerKey) {
        self.beating.remove(&worker);
    }

    /// The worker's process starts, joins and listens on [`ADDRESS`]; returns what the last
    /// step led to.
    fn bring_up(&mut self, worker: WorkerKey) -> Vec<Action> {
        self.online(worker);
        self.listening(worker)
    }

    /// The worker's process starts and joins; returns what joining led to.
    fn online(&mut self, worker: WorkerKey) -> Vec<Action> {
        self.spawned(worker);
        self.message(
            worker,
            Message::Online {
                version: PROTOCOL_VERSION,
                pid: 0,
            },
        )
    }

    fn spawned(&mut self, worker: WorkerKey) -> Vec<Action> {
        self.next_pid += 1;
        let pid = self.next_pid;
        self.feed(Input::Spawned { worker, pid })
    }

    fn listening(&mut self, worker: WorkerKey) -> Vec<Action> {
        self.message(worker, Message::Listening { key: key() })
    }

    fn message(&mut self, worker: WorkerKey, message: Message) -> Vec<Action> {
        if matches!(message, Message::Online { .. }) {
            self.beating.insert(worker);
        }
        self.feed(Input::Message { worker, message })
    }

    /// A new connection from `peer`.
    fn connect_from(&mut self, peer: &str) -> (ConnId, Vec<Action>) {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        let conn = Conn {
            id,
            key: key(),
            peer: peer.parse().unwrap(),
        };
        (id, self.feed(Input::Connections(vec![conn])))
    }

    fn connect(&mut self) -> (ConnId, Vec<Action>) {
        self.connect_from("10.0.0.1:5000")
    }

    fn accepted(&mut self, worker: WorkerKey, seq: u64, ok: bool) -> Vec<Action> {
        self.message(
            worker,
            Message::Accepted {
                seq,
                ok,
                draining: false,
            },
        )
    }

    /// The worker refuses handoff `seq`, draining or only busy.
    fn refused(&mut self, worker: WorkerKey, seq: u64, draining: bool) -> Vec<Action> {
        let refusal = Message::Accepted {
            seq,
            ok: false,
            draining,
        };
        self.message(worker, refusal)
    }

    /// A command from user code that nobody waits the answer of.
    fn command(&mut self, command: Command) -> Vec<Action> {
        self.feed(Input::Command {
            command,
            reply: None,
        })
    }

    /// A command from user code whose caller waits for the answer (to the returned number).
    fn ask(&mut self, command: Command) -> (ReplyId, Vec<Action>) {
        self.next_reply += 1;
        let reply = ReplyId(self.next_reply);
        let actions = self.feed(Input::Command {
            command,
            reply: Some(reply),
        });
        (reply, actions)
    }

    fn exited(&mut self, worker: WorkerKey, exit: ProcessExit) -> Vec<Action> {
        self.beating.remove(&worker);
        self.feed(Input::Exited { worker, exit })
    }
}

/// A heartbeat of an idle worker.
fn heartbeat() -> Message {
    Message::Heartbeat {
        conns: 0,
        inflight: 0,
        served: 0,
        rss: 0,
    }
}

fn binds(actions: &[Action]) -> Vec<&str> {
    picked!(actions, Action::Bind { address } => address.as_str())
}

fn spawns(actions: &[Action]) -> Vec<(WorkerKey, usize)> {
    picked!(actions, Action::Spawn { worker, slot } => (*worker, *slot))
}

/// (worker, seq, connection) of every handoff.
fn handoffs(actions: &[Action]) -> Vec<(WorkerKey, u64, ConnId)> {
    picked!(actions, Action::HandOff { worker, seq, conn } => (*worker, *seq, conn.id))
}

fn closed_conns(actions: &[Action]) -> Vec<ConnId> {
    picked!(actions, Action::CloseConn(id) => *id)
}

fn kills(actions: &[Action]) -> Vec<WorkerKey> {
    picked!(actions, Action::Kill { worker } => *worker)
}

fn notices(actions: &[Action]) -> Vec<&Notice> {
    picked!(actions, Action::Notify(notice) => notice)
}

/// (worker, message) of every control frame or reply sent.
fn sent(actions: &[Action]) -> Vec<(WorkerKey, &Message)> {
    picked!(actions, Action::Send { worker, message, .. } => (*worker, message))
}

/// (worker, message) of every user message queued.
fn delivered(actions: &[Action]) -> Vec<(WorkerKey, &Message)> {
    picked!(actions, Action::Deliver { worker, message, .. } => (*worker, message))
}

/// The answers given, to whom.
fn answers(actions: &[Action]) -> Vec<(ReplyId, &Answer)> {
    picked!(actions, Action::Answer { reply, answer } => (*reply, answer))
}

/// The result the machine finished with, if it did.
fn finished(actions: Vec<Action>) -> Option<Result<(), crate::Error>> {
    actions.into_iter().find_map(|action| match action {
        Action::Finish(result) => Some(result),
        _ => None,
    })
}
