//! Worker lifecycle: started, online, channel closed, exited; restarts with backoff and the
//! crash-loop guard; the disconnect timeout; the ready notice.

use clustered_ipc::{PROTOCOL_VERSION, WireError};

use super::action::{Action, Notice};
use super::input::{ReplyId, Timer};
use super::restart::{MAX_BOOT_TIMEOUTS, Restart};
use super::state::{Machine, Phase};
use super::workers::{Origin, WorkerState};
use crate::Error;
use crate::master::command::Answer;
use crate::master::handle::WorkerStatus;
use crate::master::ids::WorkerKey;
use crate::master::process_exit::{ExitReason, ProcessExit};
use crate::role::AGENT_ID;

impl Machine {
    /// The worker's process runs.
    pub(super) fn on_spawned(&mut self, key: WorkerKey, pid: u32) {
        if let Some(worker) = self.workers.get_mut(&key) {
            tracing::debug!(slot = worker.slot, pid, "worker spawned");
            worker.pid = Some(pid);
            self.notify(Notice::Fork(key));
        }
    }

    /// The worker joined; one speaking another protocol version is stopped.
    pub(super) fn on_online(&mut self, key: WorkerKey, version: u32) {
        let Some(worker) = self.workers.get(&key) else {
            return;
        };
        if version != PROTOCOL_VERSION {
            tracing::error!(
                slot = worker.slot,
                pid = worker.pid(),
                "worker speaks protocol version {version}, this master {PROTOCOL_VERSION} (a binary of another build?); killing it"
            );
            self.kill(key, ExitReason::ProtocolVersion);
            return;
        }
        tracing::debug!(slot = worker.slot, pid = worker.pid(), "worker online");
        if let Some(worker) = self.workers.get_mut(&key) {
            worker.online = true;
        }
        self.note_serving(key);
        self.set_status(key, WorkerStatus::Online);
        self.notify(Notice::Online(key));
        self.tell_fleet_status(key);
        self.serving_changed(key);
    }

    /// The worker says it is warmed up: when the master waits for that, it now gets
    /// connections on the addresses it listens on, and a reload's replacement takes over.
    pub(super) fn on_ready(&mut self, key: WorkerKey) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        if std::mem::replace(&mut worker.ready, true) || !self.config.wait_ready {
            return;
        }
        tracing::debug!(slot = worker.slot, pid = worker.pid(), "worker ready");
        let (slot, stopping) = (worker.slot, worker.is_leaving());
        let keys: Vec<_> = worker.listening.iter().cloned().collect();
        if !stopping {
            self.route_to(key, slot, keys);
        }
        self.note_serving(key);
        self.reload_on_listening(key);
        self.serving_changed(key);
        self.announce_if_ready();
    }

    /// The worker sent a message only the master may send: it broke the protocol, and is
    /// killed (and replaced).
    pub(super) fn on_forbidden(&mut self, key: WorkerKey, kind: &str) {
        if let Some(worker) = self.workers.get(&key) {
            tracing::error!(
                slot = worker.slot,
                pid = worker.pid(),
                kind,
                "worker sent a message only the master may send; killing it"
            );
            self.kill(key, ExitReason::Protocol);
        }
    }

    /// The worker drains of its own accord (it received SIGTERM, sent by hand): it is
    /// replaced as `clusterctl kill` replaces it. One whose stop was asked for already (the
    /// master's `disconnect`, or user code through its handle) is left as it was asked.
    pub(super) fn on_stopping(&mut self, key: WorkerKey) {
        let asked = self.workers.get(&key).is_none_or(|w| w.exit_is_intended());
        if self.is_stopping() || asked {
            return;
        }
        tracing::info!("worker is stopping on its own (SIGTERM); starting its successor");
        self.stop_from_outside(key);
    }

    /// `clusterctl kill`: the worker serving `slot` is replaced; answered once its successor
    /// serves. Refused when none serves it, or while a reload (or a recycling) runs.
    pub(super) fn restart_slot(&mut self, slot: usize, reply: Option<ReplyId>) {
        let old = match self.serving_worker(slot) {
            _ if self.phase != Phase::Running => {
                Err("the cluster is not running (it is starting or stopping)".to_owned())
            }
            _ if self.reload.is_running() => {
                Err("a rolling reload (or a recycling) is under way; kill again after it".into())
            }
            None => Err(format!(
                "no worker {slot} is running (no such slot, or its worker is stopping)"
            )),
            Some(old) => Ok(old),
        };
        let old = match old {
            Ok(old) => old,
            Err(refusal) => return self.answer(reply, Answer::Refused(refusal)),
        };
        let old_pid = self.workers.get(&old).map_or(0, |worker| worker.pid());
        tracing::info!(slot, pid = old_pid, "replacing worker on request");
        self.stop_from_outside(old);
        self.await_restart(reply, slot, old, old_pid);
    }

    /// A stop asked from outside the master: the worker gets nothing more and drains (it is
    /// told, in case it does not know yet), and its successor starts at once (the agent's
    /// once it has exited: there is never two). Its exit says `requested`; not a crash, and
    /// not counted as a restart.
    fn stop_from_outside(&mut self, key: WorkerKey) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        worker.stopped_for = Some(ExitReason::Requested);
        let (slot, agent) = (worker.slot, worker.is_agent());
        self.retire(key);
        if !agent {
            self.replace_at_once(slot);
        }
    }

    /// Starts a worker in `slot` now, unless the master is stopping, the slot is gone or
    /// another worker serves it: a stop that was asked for, not a crash.
    fn replace_at_once(&mut self, slot: usize) {
        let allowed = slot != AGENT_ID || self.may_run_agent();
        if allowed
            && !self.is_stopping()
            && self.is_current_slot(slot)
            && self.serving_worker(slot).is_none()
        {
            self.spawn(slot, Origin::Restart);
        }
    }

    /// The worker's channel closed: it gets nothing more. What it did not acknowledge goes to
    /// others only once its process has exited: until then it may still be serving a
    /// connection whose acknowledgement was lost with the channel. One that broke the protocol
    /// is killed.
    pub(super) fn on_channel_closed(&mut self, key: WorkerKey, error: Option<WireError>) {
        self.dispatcher.remove_worker(key);
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        worker.connected = false;
        let (slot, pid) = (worker.slot, worker.pid());
        self.push(Action::WorkerDisconnected { worker: key });
        match error {
            Some(error) if error.is_protocol_violation() => {
                tracing::error!(slot, pid, %error, "worker broke the IPC protocol; killing it");
                self.kill(key, ExitReason::Protocol);
            }
            Some(error) => tracing::warn!(slot, %error, "IPC with worker failed"),
            None => tracing::debug!(slot, "worker closed its IPC channel"),
        }
    }

    /// User code signalled the worker through its handle: it is not replaced.
    pub(super) fn on_release(&mut self, key: WorkerKey) {
        if let Some(worker) = self.workers.get_mut(&key) {
            worker.released = true;
        }
    }

    /// The worker process is gone: keeps what it counted, forgets it and tells user code
    /// (its handle dead before its exit notice, its link dropped after). Returns what it was.
    pub(super) fn remove_exited(
        &mut self,
        key: WorkerKey,
        exit: &ProcessExit,
    ) -> Option<WorkerState> {
        // Its counters are kept for good, before anything can scrape it as gone.
        self.push(Action::RetireMetrics { worker: key });
        self.redispatch_from(key);
        let worker = self.workers.remove(&key)?;
        self.subscriptions.forget(key);
        self.counters.forget(key);
        let reason = worker.exit_reason();
        self.push(Action::WorkerStatus {
            worker: key,
            status: WorkerStatus::Dead,
        });
        self.push(Action::WorkerGone {
            worker: key,
            slot: worker.slot,
            reason,
        });
        self.notify(Notice::Exit {
            worker: key,
            code: exit.code(),
            signal: exit.signal(),
            exited_after_disconnect: worker.exit_is_intended(),
            reason,
        });
        self.push(Action::Unlink { worker: key });
        Some(worker)
    }

    /// A worker that died on its own gets a successor in its slot (unless another serves it);
    /// one stopped from outside gets one at once. A slot whose workers keep timing out at boot
    /// stops the cluster.
    pub(super) fn restart_if_unexpected(&mut self, worker: &WorkerState, exit: &ProcessExit) {
        let (slot, pid) = (worker.slot, worker.pid());
        let reason = worker.exit_reason();
        let timed_out = reason == ExitReason::BootTimeout;
        if timed_out && !self.is_stopping() && self.restarts.on_boot_end(slot, true) {
            return self.fail(Error::BootTimeouts {
                slot,
                count: MAX_BOOT_TIMEOUTS,
                reason: self.boot_failure(worker),
                last_output: Vec::new(),
            });
        }
        if worker.stopped_for == Some(ExitReason::Requested) {
            // Stopped from outside, whether it then exited or was killed at the drain timeout:
            // its successor runs already, or (the agent) starts now.
            tracing::info!(slot, pid, %reason, "worker stopped on request: {exit}");
            return self.replace_at_once(slot);
        }
        if self.is_stopping() || worker.exit_is_intended() || !self.is_current_slot(slot) {
            tracing::debug!(slot, pid, "worker exited: {exit}");
            return;
        }
        tracing::warn!(slot, pid, %reason, "worker exited unexpectedly: {exit}");
        if self.serving_worker(slot).is_none() {
            // A worker that never got to listen died early, however long it took.
            let uptime = match reason {
                ExitReason::BootTimeout => std::time::Duration::ZERO,
                _ => worker.uptime(self.now),
            };
            self.schedule_restart(slot, uptime, pid, exit.to_string());
        }
    }

    /// Decides, with the restart policy, when the slot's next worker starts, or gives up.
    pub(super) fn schedule_restart(
        &mut self,
        slot: usize,
        uptime: std::time::Duration,
        pid: u32,
        status: String,
    ) {
        let policy = self.config.restart;
        match self.restarts.on_death(&policy, slot, uptime, &mut self.rng) {
            Restart::After(delay) => {
                tracing::info!(slot, ?delay, "restarting worker");
                self.push(Action::SlotRestarted { slot });
                self.notify(Notice::Restarting { slot, delay });
                self.arm(delay, Timer::RestartDue { slot });
            }
            Restart::GiveUp { early_deaths } => self.fail(Error::CrashLoop {
                slot,
                pid,
                status,
                early_deaths,
                min_uptime: policy.min_uptime,
                last_output: Vec::new(),
            }),
        }
    }

    /// A slot's backoff has passed: its next worker starts, unless that is moot now.
    pub(super) fn on_restart_due(&mut self, slot: usize) {
        if !self.is_stopping() && self.is_current_slot(slot) && self.serving_worker(slot).is_none()
        {
            self.spawn(slot, Origin::Restart);
        }
    }

    /// A worker asked to stop is still there after the shutdown timeout: killed.
    pub(super) fn on_disconnect_timeout(&mut self, key: WorkerKey) {
        let Some(worker) = self.workers.get(&key) else {
            return;
        };
        tracing::warn!(
            slot = worker.slot,
            pid = worker.pid(),
            timeout = ?self.config.shutdown_timeout,
            "worker did not stop in time; killing it"
        );
        self.kill(key, ExitReason::DrainTimeout);
        if self.is_stopping() {
            self.stop.killed_at_timeout += 1;
        }
    }

    /// `key` may have come to serve (it listens everywhere, or said it is ready): its slot's
    /// count of boot timeouts in a row starts over.
    pub(super) fn note_serving(&mut self, key: WorkerKey) {
        if let Some(worker) = self.workers.get(&key)
            && self.serves(worker)
        {
            self.restarts.on_boot_end(worker.slot, false);
        }
    }

    /// Tells user code, once, when every worker listens on every bound address.
    pub(super) fn announce_if_ready(&mut self) {
        let workers = self.workers.values().filter(|w| !w.is_agent()).count();
        let all_listening = workers >= self.config.worker_count
            && self.listeners.len() > 0
            && self.workers.values().all(|worker| self.serves(worker));
        if self.ready || !all_listening {
            return;
        }
        self.ready = true;
        let addresses = self.listeners.addresses();
        tracing::info!(workers, ?addresses, "cluster ready");
        self.notify(Notice::Ready(addresses));
    }
}
