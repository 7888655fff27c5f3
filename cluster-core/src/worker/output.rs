//! A worker's stdout and stderr, which the master captures (it prefixes each line with the
//! worker's slot). Written through here, they never block the worker for long and never fail
//! it: the process's descriptors 1 and 2 become pipes drained by a forwarder thread, which
//! passes the bytes on to the master's pipes without blocking, drops what the master is too
//! slow to take (saying how much, once it takes output again), and discards everything once
//! the master is gone. Without it, a worker whose master was killed would panic on its next
//! `println!` (a broken pipe), and one whose master reads slowly would stop in `write`.
//!
//! The forwarder sleeps in `poll` while nothing is written: no wake-ups for an idle worker.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};

/// Bytes read and passed on at a time.
const CHUNK: usize = 16 * 1024;

/// One of the process's output streams, as the forwarder sees it.
struct Stream {
    /// What the process writes to (as descriptor 1 or 2) comes out here.
    inner: OwnedFd,
    /// The master's pipe (the descriptor the process was started with).
    outer: OwnedFd,
    /// The master has gone: discard.
    closed: bool,
    /// Bytes dropped since the master last took any.
    dropped: usize,
}

/// Puts the forwarder between this process's stdout and stderr and the master's pipes.
pub(crate) fn protect() -> io::Result<()> {
    let stdout = redirect(1)?;
    let stderr = redirect(2)?;
    std::thread::Builder::new()
        .name("output".into())
        .stack_size(64 * 1024)
        .spawn(move || forward([stdout, stderr]))?;
    Ok(())
}

/// Moves descriptor `fd` (1 or 2) onto a pipe of its own; returns both ends' new places.
fn redirect(fd: i32) -> io::Result<Stream> {
    // SAFETY: descriptors 1 and 2 are open for the life of the process (the master started it
    // with pipes there); they are only borrowed to copy them.
    let current = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let outer = rustix::io::fcntl_dupfd_cloexec(current, 3)?;
    // Only this worker writes to its pipes, so the flag changes nothing for anyone else.
    fcntl_setfl(&outer, fcntl_getfl(&outer)? | OFlags::NONBLOCK)?;
    let (inner, write_end) = pipe_with(PipeFlags::CLOEXEC)?;
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

/// Drains both pipes until the process exits.
fn forward(mut streams: [Stream; 2]) {
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let mut ready = [false; 2];
        {
            let [out, err] = &streams;
            let mut fds = [
                PollFd::new(&out.inner, PollFlags::IN),
                PollFd::new(&err.inner, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => return,
            }
            for (ready, fd) in ready.iter_mut().zip(&fds) {
                *ready = !fd.revents().is_empty();
            }
        }
        for (stream, ready) in streams.iter_mut().zip(ready) {
            if ready && !stream.pass_on(&mut chunk) {
                return;
            }
        }
    }
}

impl Stream {
    /// Passes one chunk on; `false` once nothing can be read any more.
    fn pass_on(&mut self, chunk: &mut [u8]) -> bool {
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
            if self.write_all(note.as_bytes()) {
                self.dropped = 0;
            }
        }
        if !self.write_all(&chunk[..read]) {
            self.dropped = self.dropped.saturating_add(read);
        }
        true
    }

    /// Writes all of `bytes` unless the master's pipe is full (then `false`) or gone.
    fn write_all(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() && !self.closed {
            match rustix::io::write(self.outer.as_fd(), bytes) {
                Ok(written) => bytes = &bytes[written..],
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return false,
                Err(_) => self.closed = true,
            }
        }
        true
    }
}
