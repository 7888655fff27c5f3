//! A worker's stdout and stderr, which the master captures (it prefixes each line with the
//! worker's slot). The process's descriptors 1 and 2 become pipes of its own ([`redirect`]),
//! which the sentinel thread (`sentinel.rs`) drains into the master's pipes: so writing never
//! blocks the worker for long and never fails it. What the master is too slow to take is
//! dropped (saying how much, once it takes output again), and once the master is gone
//! everything is discarded. Without it, a worker whose master was killed would panic on its
//! next `println!` (a broken pipe), and one whose master reads slowly would stop in `write`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};

/// Bytes read and passed on at a time.
pub(super) const CHUNK: usize = 16 * 1024;

/// One of the process's output streams, between the process and the master.
pub(super) struct Stream {
    /// What the process writes to (as descriptor 1 or 2) comes out here (non-blocking).
    pub(super) inner: OwnedFd,
    /// The master's pipe (the descriptor the process was started with; non-blocking).
    outer: OwnedFd,
    /// The master has gone: discard.
    closed: bool,
    /// Bytes dropped since the master last took any.
    dropped: usize,
}

/// Moves descriptor `fd` (1 or 2) onto a pipe of its own; returns both ends' new places.
pub(super) fn redirect(fd: i32) -> io::Result<Stream> {
    // SAFETY: descriptors 1 and 2 are open for the life of the process (the master started it
    // with pipes there); they are only borrowed to copy them.
    let current = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let outer = rustix::io::fcntl_dupfd_cloexec(current, 3)?;
    // Only this worker writes to its pipes, so the flag changes nothing for anyone else.
    fcntl_setfl(&outer, fcntl_getfl(&outer)? | OFlags::NONBLOCK)?;
    let (inner, write_end) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    // The process's own end blocks, as a terminal or a pipe would: only the reading end
    // (ours) may not.
    fcntl_setfl(
        &write_end,
        fcntl_getfl(&write_end)?.difference(OFlags::NONBLOCK),
    )?;
    match fd {
        1 => rustix::stdio::dup2_stdout(&write_end)?,
        _ => rustix::stdio::dup2_stderr(&write_end)?,
    }
    Ok(Stream {
        inner,
        outer,
        closed: false,
        dropped: 0,
    })
}

impl Stream {
    /// Passes one chunk on, dropping what the master cannot take now; `false` once nothing
    /// can be read any more.
    pub(super) fn pass_on(&mut self, chunk: &mut [u8]) -> bool {
        let read = match rustix::io::read(&self.inner, &mut *chunk) {
            Ok(0) => return false,
            Ok(read) => read,
            Err(Errno::INTR | Errno::AGAIN) => return true,
            Err(_) => return false,
        };
        if self.closed {
            return true;
        }
        if self.dropped > 0 {
            let note = format!(
                "[{} bytes of output dropped: the master was not reading]\n",
                self.dropped
            );
            if self.write_all(note.as_bytes(), None) {
                self.dropped = 0;
            }
        }
        if !self.write_all(&chunk[..read], None) {
            self.dropped = self.dropped.saturating_add(read);
        }
        true
    }

    /// Passes on everything written so far, waiting for the master's pipe to take it until
    /// `deadline` (what it still cannot take then is dropped): the last words of a worker
    /// that exits.
    pub(super) fn flush(&mut self, chunk: &mut [u8], deadline: Instant) {
        loop {
            let read = match rustix::io::read(&self.inner, &mut *chunk) {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            if !self.closed && !self.write_all(&chunk[..read], Some(deadline)) {
                self.dropped = self.dropped.saturating_add(read);
            }
        }
    }

    /// Writes all of `bytes` unless the master's pipe is full (then `false`: at once, or at
    /// `deadline` when given) or gone.
    fn write_all(&mut self, mut bytes: &[u8], deadline: Option<Instant>) -> bool {
        while !bytes.is_empty() && !self.closed {
            match rustix::io::write(self.outer.as_fd(), bytes) {
                Ok(written) => bytes = &bytes[written..],
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => match deadline {
                    Some(deadline) if wait_writable(&self.outer, deadline) => {}
                    _ => return false,
                },
                Err(_) => self.closed = true,
            }
        }
        true
    }
}

/// Waits until `fd` takes more, or `deadline`; whether it does.
fn wait_writable(fd: &OwnedFd, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    let timeout = Timespec::try_from(left).unwrap_or(Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    });
    let mut fds = [PollFd::new(fd, PollFlags::OUT)];
    matches!(poll(&mut fds, Some(&timeout)), Ok(1..) | Err(Errno::INTR))
}
