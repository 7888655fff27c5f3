//! Graceful stop, timed-out and forced stops.

use crate::Policy;
use clustered_ipc::Message;

use super::*;
use crate::Error;
use crate::master::machine::SignalAction;

fn stop(h: &mut Harness) -> Vec<Action> {
    h.feed(Input::Signal(SignalAction::Stop("SIGTERM")))
}

#[test]
fn a_stop_closes_the_listeners_hands_out_what_they_accepted_then_drains_every_worker() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let actions = stop(&mut h);
    assert_eq!(notices(&actions), [&Notice::ShutdownStarted]);
    assert!(matches!(actions.last(), Some(Action::CloseListeners)));
    assert!(sent(&actions).is_empty(), "nobody is disconnected yet");
    // Accepted before the listeners closed: still handed out.
    let (conn, actions) = h.connect();
    assert_eq!(handoffs(&actions)[0].2, conn);
    let actions = h.feed(Input::ListenersClosed);
    for worker in &w {
        assert!(sent(&actions).contains(&(*worker, &Message::Disconnect)));
    }
    assert!(
        h.newly_armed()
            .contains(&(Duration::from_secs(35), Timer::ShutdownDeadline))
    );
    assert!(finished(h.exited(w[0], ProcessExit::Code(0))).is_none());
    let result = finished(h.exited(w[1], ProcessExit::Code(0)));
    assert!(matches!(result, Some(Ok(()))), "{result:?}");
}

#[test]
fn nothing_is_restarted_or_reloaded_during_a_stop() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    // Slot 2 crashed just before the stop: its restart is armed.
    h.exited(w[1], ProcessExit::Code(1));
    stop(&mut h);
    h.exited(w[0], ProcessExit::Signal(9));
    assert!(h.newly_armed().is_empty());
    let actions = h.feed(Input::Signal(SignalAction::Reload("SIGHUP")));
    assert!(spawns(&actions).is_empty());
    assert!(spawns(&h.expire(&Timer::RestartDue { slot: 2 })).is_empty());
}

#[test]
fn workers_past_the_shutdown_timeout_are_killed_and_the_stop_says_so() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    stop(&mut h);
    h.feed(Input::ListenersClosed);
    h.exited(w[0], ProcessExit::Code(0));
    let (waited, actions) = h.run_until(&Timer::DisconnectTimeout { worker: w[1] });
    assert_eq!(waited, Duration::from_secs(30));
    assert_eq!(kills(&actions), [w[1]]);
    let error = finished(h.exited(w[1], ProcessExit::Signal(9)))
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(error, Error::ShutdownTimeout { count: 1, .. }),
        "{error}"
    );
}

#[test]
fn a_second_stop_signal_kills_every_worker_at_once() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    stop(&mut h);
    h.feed(Input::ListenersClosed);
    let actions = h.feed(Input::Signal(SignalAction::Stop("SIGINT")));
    assert_eq!(kills(&actions), w);
    assert_eq!(
        h.newly_armed(),
        [(Duration::from_secs(5), Timer::ShutdownDeadline)]
    );
    assert!(
        h.feed(Input::Signal(SignalAction::Stop("SIGINT")))
            .is_empty(),
        "once"
    );
    h.exited(w[0], ProcessExit::Signal(9));
    let error = finished(h.exited(w[1], ProcessExit::Signal(9)))
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, Error::ForcedStop { count: 2 }), "{error}");
}

#[test]
fn workers_that_cannot_be_reaped_do_not_hold_the_master_forever() {
    let (mut h, _) = Harness::running(1, Policy::Rr);
    stop(&mut h);
    h.feed(Input::ListenersClosed);
    let result = finished(h.expire(&Timer::ShutdownDeadline));
    assert!(result.is_some(), "finished at the deadline");
}

#[test]
fn connections_no_worker_could_take_are_closed_when_the_master_finishes() {
    let (mut h, w) = Harness::running(1, Policy::Rr);
    h.feed(Input::ChannelClosed {
        worker: w[0],
        error: None,
    });
    let (conn, actions) = h.connect();
    assert!(handoffs(&actions).is_empty());
    stop(&mut h);
    h.feed(Input::ListenersClosed);
    let actions = h.exited(w[0], ProcessExit::Code(0));
    assert_eq!(closed_conns(&actions), [conn]);
    assert!(matches!(finished(actions), Some(Ok(()))));
}
