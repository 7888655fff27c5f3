//! [`Acceptors`]: the listening sockets the master accepts on itself (`rr`, `sticky`,
//! `least`), polled by the driver's own loop. No task and no channel stand between an accept
//! and its handoff: the wake-up that finds a listener readable accepts, asks the machine and
//! sends, so one connection costs the master one pass of its loop. Accepted sockets are never
//! registered with the master's event loop: the master only holds and hands them on.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use clustered_ipc::ListenKey;
use rustix::io::Errno;
use rustix::net::{SocketFlags, acceptfrom_with};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Sleep;

use super::held_conns::Accepted;
use crate::limits::AcceptErrors;

/// Connections one pass of the driver's loop accepts at most (from all listeners together).
const ACCEPT_BATCH: usize = 64;

/// Every socket the master accepts on, and whether it accepts yet.
#[derive(Debug)]
pub(crate) struct Acceptors {
    listeners: Vec<Acceptor>,
    /// The listener the next pass looks at first, so that a busy one cannot starve the rest.
    next: usize,
    /// Whether the master accepts yet: one an upgrade started accepts only once its workers
    /// serve (until then its predecessor takes the connections, and a new master that fails
    /// loses none).
    accepting: bool,
    /// A descriptor kept in reserve (`/dev/null`) while there is a listener, given back when
    /// descriptors run out so the master can go on (copy a handoff, start a worker) while it
    /// waits for room; taken again once it accepts. One for all the listeners.
    reserve: Option<std::fs::File>,
}

/// One listening socket.
#[derive(Debug)]
struct Acceptor {
    key: ListenKey,
    listener: AsyncFd<OwnedFd>,
    errors: AcceptErrors,
    /// After a failed `accept`, when to try again.
    paused: Option<Pin<Box<Sleep>>>,
}

impl Acceptors {
    /// No listener yet; accepting at once, or (`hold`) once [`Self::start`] is called.
    pub(crate) fn new(hold: bool) -> Self {
        Self {
            listeners: Vec::new(),
            next: 0,
            accepting: !hold,
            reserve: None,
        }
    }

    /// Accepts on `listener` (listening, non-blocking) for `key` from now on.
    pub(crate) fn add(&mut self, key: ListenKey, listener: OwnedFd) -> io::Result<()> {
        // SAFETY: the `OwnedFd` stays open and the same for as long as the `AsyncFd` owns it.
        let listener = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) }
            .map_err(|error| error.into_parts().1)?;
        self.reserve = self.reserve.take().or_else(reserve_descriptor);
        self.listeners.push(Acceptor {
            key,
            listener,
            errors: AcceptErrors::new(),
            paused: None,
        });
        Ok(())
    }

    /// Starts accepting, if held.
    pub(crate) fn start(&mut self) {
        self.accepting = true;
    }

    /// Stops accepting and closes every listener, for good.
    pub(crate) fn close(&mut self) {
        self.listeners.clear();
        self.reserve = None;
    }

    /// Whether there is anything to accept on now.
    pub(crate) fn is_on(&self) -> bool {
        self.accepting && !self.listeners.is_empty()
    }

    /// The connections waiting on the listeners once one is readable: every one waiting, up to
    /// `room` and [`ACCEPT_BATCH`].
    pub(crate) async fn accepted(&mut self, room: usize) -> Vec<Accepted> {
        poll_fn(|cx| self.poll_accepted(cx, room)).await
    }

    fn poll_accepted(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<Vec<Accepted>> {
        let limit = room.min(ACCEPT_BATCH);
        let count = self.listeners.len();
        let mut batch = Vec::new();
        for turn in 0..count {
            if batch.len() >= limit {
                break;
            }
            let index = self.next.wrapping_add(turn) % count;
            let acceptor = &mut self.listeners[index];
            let before = batch.len();
            let result = acceptor.poll_accept(cx, &mut batch, limit);
            if batch.len() > before {
                acceptor.errors.succeeded(acceptor.key.as_str());
                self.next = index.wrapping_add(1);
                self.reserve = self.reserve.take().or_else(reserve_descriptor);
            }
            if let Err(error) = result {
                let delay = acceptor.errors.after(&error, acceptor.key.as_str());
                if acceptor.errors.is_exhausted() {
                    self.reserve = None;
                }
                let mut pause = Box::pin(tokio::time::sleep(delay));
                // Registers this task's waker for the end of the pause.
                let _ = pause.as_mut().poll(cx);
                acceptor.paused = Some(pause);
            }
        }
        if batch.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(batch)
        }
    }
}

impl Acceptor {
    /// Accepts what waits on this listener into `batch`, until it holds `limit`; the error
    /// that stopped it, if one did (the connections accepted before it are in `batch`).
    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
        batch: &mut Vec<Accepted>,
        limit: usize,
    ) -> io::Result<()> {
        if let Some(pause) = &mut self.paused {
            if pause.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            self.paused = None;
        }
        while batch.len() < limit {
            let mut ready = match self.listener.poll_read_ready(cx) {
                Poll::Ready(ready) => ready?,
                Poll::Pending => return Ok(()),
            };
            match acceptfrom_with(
                ready.get_inner(),
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            ) {
                Ok((fd, peer)) => batch.push(Accepted {
                    key: self.key.clone(),
                    fd,
                    peer: peer
                        .and_then(|peer| SocketAddr::try_from(peer).ok())
                        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
                }),
                // The next poll registers the waker for the next connection.
                Err(Errno::AGAIN) => ready.clear_ready(),
                Err(Errno::INTR) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }
}

/// A descriptor to keep in reserve (`/dev/null`), if one can be had.
fn reserve_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}
