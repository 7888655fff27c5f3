//! `tls reload`: every serving worker is told to load its TLS certificates again, and the
//! command is answered once each has said how it went, has gone, or has been silent for
//! [`CERTIFICATES_TIMEOUT`]; the answer names every worker that kept the certificate before.

use std::collections::BTreeMap;
use std::time::Duration;

use clustered_ipc::Message;

use super::answers::PendingCertificates;
use super::input::{ReplyId, Timer};
use super::state::Machine;
use crate::master::command::{Answer, Done};
use crate::master::ids::WorkerKey;

/// How long a worker may take to say how its reload went (reading two small files).
pub(super) const CERTIFICATES_TIMEOUT: Duration = Duration::from_secs(10);

impl Machine {
    /// Tells every connected worker that is not stopping to load its TLS certificates again;
    /// answered once they have all said how it went.
    pub(super) fn reload_certificates(&mut self, reply: Option<ReplyId>) {
        let id = self.answers.next_certificates_id;
        self.answers.next_certificates_id = id.wrapping_add(1);
        let waiting: BTreeMap<WorkerKey, (usize, u32)> = self
            .workers
            .iter()
            .filter(|(_, worker)| worker.connected && !worker.is_leaving())
            .map(|(key, worker)| (*key, (worker.slot, worker.pid())))
            .collect();
        for key in waiting.keys() {
            self.send(*key, Message::ReloadCertificates { id });
        }
        let Some(reply) = reply else {
            return;
        };
        if waiting.is_empty() {
            let why = "no worker is running to load a certificate";
            return self.answer(Some(reply), Answer::Refused(why.into()));
        }
        self.answers.certificates.push(PendingCertificates {
            reply,
            id,
            asked: waiting.len(),
            waiting,
            loaded: 0,
            without_tls: 0,
            problems: Vec::new(),
        });
        self.arm(CERTIFICATES_TIMEOUT, Timer::CertificatesDeadline { id });
    }

    /// Worker `key` says how reload `id` went: `loaded` of its TLS servers took the new
    /// certificate, `errors` say why the others did not. An answer nobody waits for (late, or
    /// to a reload nobody asked to hear of) is ignored.
    pub(super) fn on_certificates_reloaded(
        &mut self,
        key: WorkerKey,
        id: u64,
        loaded: u32,
        errors: Vec<String>,
    ) {
        let Some(pending) = self.answers.certificates.iter_mut().find(|p| p.id == id) else {
            return;
        };
        let Some((slot, pid)) = pending.waiting.remove(&key) else {
            return;
        };
        if !errors.is_empty() {
            let refusals = errors.into_iter().map(|error| {
                format!("worker {slot} (pid {pid}) keeps the certificate before: {error}")
            });
            pending.problems.extend(refusals);
        } else if loaded == 0 {
            pending.without_tls += 1;
        } else {
            pending.loaded += 1;
        }
    }

    /// Reload `id`'s time is up: the workers yet to answer are named as silent.
    pub(super) fn on_certificates_deadline(&mut self, id: u64) {
        let Some(pending) = self.answers.certificates.iter_mut().find(|p| p.id == id) else {
            return;
        };
        let silent = std::mem::take(&mut pending.waiting).into_values();
        let silent = silent.map(|(slot, pid)| {
            format!(
                "worker {slot} (pid {pid}) did not answer within {} s",
                CERTIFICATES_TIMEOUT.as_secs()
            )
        });
        pending.problems.extend(silent);
    }

    /// Answers the reloads every worker has answered (looked at after every input): a worker
    /// that is gone or disconnected is waited for no more.
    pub(super) fn settle_certificates(&mut self) {
        if self.answers.certificates.is_empty() {
            return;
        }
        let workers = &self.workers;
        for pending in &mut self.answers.certificates {
            let mut gone = Vec::new();
            pending.waiting.retain(|key, (slot, pid)| {
                let connected = workers.get(key).is_some_and(|worker| worker.connected);
                if !connected {
                    gone.push(format!("worker {slot} (pid {pid}) exited before answering"));
                }
                connected
            });
            pending.problems.extend(gone);
        }
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.answers.certificates)
            .into_iter()
            .partition(|pending| pending.waiting.is_empty());
        self.answers.certificates = waiting;
        for pending in done {
            let answer = answer_of(&pending);
            self.answer(Some(pending.reply), answer);
        }
    }
}

/// What a reload that every worker has answered tells the one who asked.
fn answer_of(pending: &PendingCertificates) -> Answer {
    let loaded = pending.loaded;
    if !pending.problems.is_empty() {
        return Answer::Failed(format!(
            "{}; {loaded} of {} workers load the new certificate",
            pending.problems.join("; "),
            pending.asked
        ));
    }
    if loaded == 0 {
        let why = "no worker serves TLS (`serve_tls`): there is no certificate to load";
        return Answer::Refused(why.into());
    }
    let mut message =
        format!("{loaded} workers load the new TLS certificate; new connections get it");
    if pending.without_tls > 0 {
        message.push_str(&format!(" ({} serve no TLS)", pending.without_tls));
    }
    Answer::Done(Done::saying(message))
}
