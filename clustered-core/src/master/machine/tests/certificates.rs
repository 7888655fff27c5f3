//! `tls reload`: every worker told, the answer once all have said how it went, naming those
//! that kept the certificate before, went away or stayed silent.

use clustered_ipc::Message;

use super::*;
use crate::master::machine::certificates::CERTIFICATES_TIMEOUT;

/// The ids of the `reloadCertificates` sent, with their workers.
fn told(actions: &[Action]) -> Vec<(WorkerKey, u64)> {
    sent(actions)
        .into_iter()
        .filter_map(|(worker, message)| match message {
            Message::ReloadCertificates { id } => Some((worker, *id)),
            _ => None,
        })
        .collect()
}

fn reloaded(
    h: &mut Harness,
    worker: WorkerKey,
    id: u64,
    loaded: u32,
    errors: &[&str],
) -> Vec<Action> {
    let errors = errors.iter().map(|error| (*error).to_owned()).collect();
    h.message(worker, Message::CertificatesReloaded { id, loaded, errors })
}

#[test]
fn answered_once_every_worker_has_loaded_it() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (reply, actions) = h.ask(Command::ReloadCertificates);
    let told = told(&actions);
    assert_eq!(
        told.iter().map(|(worker, _)| *worker).collect::<Vec<_>>(),
        w
    );
    let id = told[0].1;
    assert!(
        answers(&actions).is_empty(),
        "answered before the workers: {actions:?}"
    );
    assert!(answers(&reloaded(&mut h, w[0], id, 1, &[])).is_empty());
    let actions = reloaded(&mut h, w[1], id, 1, &[]);
    let [(to, Answer::Done(done))] = answers(&actions)[..] else {
        panic!("done: {actions:?}")
    };
    assert_eq!(to, reply);
    assert_eq!(
        done.message,
        "2 workers load the new TLS certificate; new connections get it"
    );
    // A late second answer changes nothing.
    assert!(answers(&reloaded(&mut h, w[1], id, 1, &[])).is_empty());
}

#[test]
fn a_refusal_names_the_worker_and_the_file_and_fails_the_command() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (_, actions) = h.ask(Command::ReloadCertificates);
    let id = told(&actions)[0].1;
    reloaded(&mut h, w[0], id, 1, &[]);
    let actions = reloaded(
        &mut h,
        w[1],
        id,
        0,
        &["cannot read the certificate chain /x/cert.pem: no certificate in it"],
    );
    let [(_, Answer::Failed(why))] = answers(&actions)[..] else {
        panic!("failed: {actions:?}")
    };
    assert_eq!(
        why,
        "worker 2 (pid 1002) keeps the certificate before: cannot read the certificate chain /x/cert.pem: no certificate in it; 1 of 2 workers load the new certificate"
    );
}

#[test]
fn workers_that_exit_or_stay_silent_are_named_and_not_waited_for() {
    let (mut h, w) = Harness::running(3, Policy::Rr);
    let (_, actions) = h.ask(Command::ReloadCertificates);
    let id = told(&actions)[0].1;
    assert!(
        h.armed()
            .contains(&(CERTIFICATES_TIMEOUT, Timer::CertificatesDeadline { id }))
    );
    reloaded(&mut h, w[0], id, 1, &[]);
    assert!(answers(&h.exited(w[1], ProcessExit::Code(1))).is_empty());
    let actions = h.expire(&Timer::CertificatesDeadline { id });
    let [(_, Answer::Failed(why))] = answers(&actions)[..] else {
        panic!("failed: {actions:?}")
    };
    assert_eq!(
        why,
        "worker 2 (pid 1002) exited before answering; worker 3 (pid 1003) did not answer within 10 s; 1 of 3 workers load the new certificate"
    );
}

#[test]
fn workers_without_tls_are_counted_apart_and_none_with_tls_is_a_refusal() {
    let (mut h, w) = Harness::running(2, Policy::Rr);
    let (_, actions) = h.ask(Command::ReloadCertificates);
    let id = told(&actions)[0].1;
    reloaded(&mut h, w[0], id, 0, &[]);
    let actions = reloaded(&mut h, w[1], id, 0, &[]);
    let [(_, Answer::Refused(why))] = answers(&actions)[..] else {
        panic!("refused: {actions:?}")
    };
    assert!(why.starts_with("no worker serves TLS"), "{why}");
    // Two reloads at once are answered apart, each by its own id.
    let (first, actions) = h.ask(Command::ReloadCertificates);
    let one = told(&actions)[0].1;
    let (second, actions) = h.ask(Command::ReloadCertificates);
    let two = told(&actions)[0].1;
    assert_ne!(one, two);
    for worker in &w {
        reloaded(&mut h, *worker, two, 1, &[]);
    }
    reloaded(&mut h, w[0], one, 1, &[]);
    let actions = reloaded(&mut h, w[1], one, 0, &[]);
    let [(to, Answer::Done(done))] = answers(&actions)[..] else {
        panic!("done: {actions:?}")
    };
    assert_eq!(to, first);
    assert_ne!(to, second);
    assert_eq!(
        done.message,
        "1 workers load the new TLS certificate; new connections get it (1 serve no TLS)"
    );
}
