//! What user code sees of a worker (its handle, the registry, its metrics) changes by the
//! machine's own actions, each before the notice that tells of it.

use crate::Policy;
use clustered_ipc::Message;

use super::*;
use crate::master::handle::{ReportedLoad, WorkerStatus};
use crate::master::machine::SignalAction;

/// (worker, status) of every status change, in order.
fn statuses(actions: &[Action]) -> Vec<(WorkerKey, WorkerStatus)> {
    picked!(actions, Action::WorkerStatus { worker, status } => (*worker, *status))
}

/// The statuses `worker` went through.
fn statuses_of(actions: &[Action], worker: WorkerKey) -> Vec<WorkerStatus> {
    statuses(actions)
        .into_iter()
        .filter(|(key, _)| *key == worker)
        .map(|(_, status)| status)
        .collect()
}

/// Where the first action that `matches` is (it must be there).
fn position(actions: &[Action], what: &str, matches: impl Fn(&Action) -> bool) -> usize {
    actions
        .iter()
        .position(matches)
        .unwrap_or_else(|| panic!("no {what} in {actions:?}"))
}

/// Where the notice `notice` is (it must be there).
fn notice_at(actions: &[Action], notice: &Notice) -> usize {
    position(
        actions,
        "notice",
        |a| matches!(a, Action::Notify(n) if n == notice),
    )
}

/// Where `worker`'s change to `status` is (it must be there).
fn status_at(actions: &[Action], worker: WorkerKey, status: WorkerStatus) -> usize {
    position(
        actions,
        "status change",
        |action| matches!(action, Action::WorkerStatus { worker: w, status: s } if *w == worker && *s == status),
    )
}

fn exit_notice(
    worker: WorkerKey,
    exit: &ProcessExit,
    intended: bool,
    reason: ExitReason,
) -> Notice {
    Notice::Exit {
        worker,
        code: exit.code(),
        signal: exit.signal(),
        exited_after_disconnect: intended,
        reason,
    }
}

#[test]
fn across_a_reload_each_worker_goes_online_listening_draining_dead_each_before_its_notice() {
    let (mut h, actions) = Harness::bound(config(1, Policy::Rr));
    let old = spawns(&actions)[0].0;
    let mut seen = h.spawned(old);
    assert!(statuses(&seen).is_empty(), "starting until it joins");
    let joined = h.message(
        old,
        Message::Online {
            version: clustered_ipc::PROTOCOL_VERSION,
            pid: 0,
        },
    );
    assert!(
        status_at(&joined, old, WorkerStatus::Online) < notice_at(&joined, &Notice::Online(old))
    );
    seen.extend(joined);
    let listening = h.listening(old);
    assert!(
        status_at(&listening, old, WorkerStatus::Listening)
            < notice_at(&listening, &Notice::Listening(old, bound()))
    );
    seen.extend(listening);

    let actions = h.feed(Input::Signal(SignalAction::Reload("SIGHUP")));
    let new = spawns(&actions)[0].0;
    seen.extend(actions);
    seen.extend(h.spawned(new));
    seen.extend(h.message(
        new,
        Message::Online {
            version: clustered_ipc::PROTOCOL_VERSION,
            pid: 0,
        },
    ));
    let took_over = h.listening(new);
    let draining = status_at(&took_over, old, WorkerStatus::Draining);
    assert!(draining < notice_at(&took_over, &Notice::Disconnect(old)));
    let intended = position(
        &took_over,
        "ExitIntended",
        |a| matches!(a, Action::ExitIntended { worker } if *worker == old),
    );
    assert!(intended < notice_at(&took_over, &Notice::Disconnect(old)));
    seen.extend(took_over);
    // A draining worker that says it listens still drains.
    let again = h.listening(old);
    assert!(statuses(&again).is_empty(), "{again:?}");
    seen.extend(again);

    let exit = ProcessExit::Code(0);
    let gone = h.exited(old, exit.clone());
    let notice = exit_notice(old, &exit, true, ExitReason::Stopped);
    assert!(status_at(&gone, old, WorkerStatus::Dead) < notice_at(&gone, &notice));
    seen.extend(gone);

    use WorkerStatus::{Dead, Draining, Listening, Online};
    assert_eq!(statuses_of(&seen, old), [Online, Listening, Draining, Dead]);
    assert_eq!(statuses_of(&seen, new), [Online, Listening]);
}

#[test]
fn a_crash_retires_the_metrics_first_then_the_handle_dies_then_the_exit_is_told() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let exit = ProcessExit::Code(1);
    let actions = h.exited(w[1], exit.clone());
    let retired = position(
        &actions,
        "RetireMetrics",
        |a| matches!(a, Action::RetireMetrics { worker } if *worker == w[1]),
    );
    assert_eq!(retired, 0, "before anything else: {actions:?}");
    let dead = status_at(&actions, w[1], WorkerStatus::Dead);
    let gone = position(&actions, "WorkerGone", |a| {
        matches!(
            a,
            Action::WorkerGone { worker, slot: 2, reason: ExitReason::Unexpected } if *worker == w[1]
        )
    });
    let told = notice_at(
        &actions,
        &exit_notice(w[1], &exit, false, ExitReason::Unexpected),
    );
    let unlinked = position(
        &actions,
        "Unlink",
        |a| matches!(a, Action::Unlink { worker } if *worker == w[1]),
    );
    assert!(retired < dead && dead < gone && gone < told && told < unlinked);
    // Its slot's restart is counted before it is told.
    let counted = position(&actions, "SlotRestarted", |a| {
        matches!(a, Action::SlotRestarted { slot: 2 })
    });
    let restarting = position(&actions, "restart notice", |a| {
        matches!(a, Action::Notify(Notice::Restarting { slot: 2, .. }))
    });
    assert!(counted < restarting);
    assert_eq!(
        statuses_of(&actions, w[0]),
        [],
        "the other worker is untouched"
    );
}

#[test]
fn an_exit_the_master_asked_for_counts_no_restart() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    h.command(Command::Disconnect(w[0]));
    let actions = h.exited(w[0], ProcessExit::Code(0));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::RetireMetrics { worker } if *worker == w[0]))
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::SlotRestarted { .. })),
        "{actions:?}"
    );
}

#[test]
fn a_heartbeat_gives_the_handle_its_load() {
    let (mut h, w) = Harness::running(1, Policy::Rr);
    let actions = h.message(
        w[0],
        Message::Heartbeat {
            conns: 3,
            inflight: 2,
            served: 40,
            rss: 0,
        },
    );
    let loads: Vec<_> = picked!(actions, Action::WorkerLoad { worker, load } => (*worker, *load));
    let load = ReportedLoad {
        connections: 3,
        in_flight: 2,
        served: 40,
    };
    assert_eq!(loads, [(w[0], load)]);
}

#[test]
fn a_closed_channel_is_told_to_the_handle_and_an_abandoned_worker_exits_as_intended() {
    let (mut h, w) = Harness::running(1, Policy::Rr);
    let actions = h.feed(Input::ChannelClosed {
        worker: w[0],
        error: None,
    });
    let closed: Vec<_> = picked!(actions, Action::WorkerDisconnected { worker } => *worker);
    assert_eq!(closed, [w[0]]);

    // A reload's replacement that does not listen in time is abandoned: killed, its exit
    // intended (said once), its status never draining.
    let actions = h.feed(Input::Signal(SignalAction::Reload("SIGHUP")));
    let new = spawns(&actions)[0].0;
    h.spawned(new);
    let actions = h.expire(&Timer::ReloadDeadline { worker: new });
    let intended: Vec<_> = picked!(actions, Action::ExitIntended { worker } => *worker);
    assert_eq!(intended, [new]);
    assert!(kills(&actions).contains(&new));
    assert!(statuses_of(&actions, new).is_empty(), "{actions:?}");
}

#[test]
fn the_backlog_is_told_when_it_changes_only() {
    let (mut h, _) = Harness::bound(config(1, Policy::Rr));
    let backlog = |actions: &[Action]| -> Vec<usize> {
        picked!(actions, Action::Backlog { queued } => *queued)
    };
    let (_, actions) = h.connect();
    assert_eq!(backlog(&actions), [1], "no worker listens yet");
    let (_, actions) = h.connect();
    assert_eq!(backlog(&actions), [2]);
    let actions = h.bring_up(WorkerKey(0));
    assert_eq!(handoffs(&actions).len(), 2);
    assert_eq!(backlog(&actions), [0]);
    let (_, actions) = h.connect();
    assert_eq!(backlog(&actions), [0; 0], "handed out at once: unchanged");
}
