//! The worker's sentinel: one thread, outside the worker's runtime, that sleeps in `poll` on
//! the process's output pipes, on a pipe of its own, and on the IPC socket, so it works while
//! the runtime is blocked or busy:
//!
//! - it passes the worker's output on to the master (`output.rs`);
//! - when the process exits (`main` returns or errs, `std::process::exit`, a panic that ends
//!   `main`, a drain after SIGTERM), an `atexit` handler wakes it and waits (at most
//!   [`FLUSH_WAIT`]) until everything written so far is passed on: a dying worker's last lines
//!   arrive whole, and they are what a crash-loop error quotes;
//! - when the master dies (the IPC socket hangs up), it gives the worker [`EXIT_GRACE`] to end
//!   on its own, then ends the process, whatever it was doing (booting, blocked, waiting on a
//!   request): no worker outlives its master by more than a second.
//!
//! It sleeps while nothing is written: no wake-ups for an idle worker.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};

use super::output::{CHUNK, Stream, redirect};
use crate::sync::lock;

/// How long a worker whose master died has to end on its own before the sentinel ends it.
pub(crate) const EXIT_GRACE: Duration = Duration::from_millis(500);

/// How long an exiting process waits for its last output to be passed on, at most (a master
/// that does not read for that long loses it).
pub(crate) const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// How the exiting process and the sentinel meet.
struct Flush {
    /// A byte written here wakes the sentinel to flush.
    wake: OwnedFd,
    /// Flushes done; the exiting process waits for it to move.
    done: Mutex<u64>,
    flushed: Condvar,
    /// The sentinel's thread (it must not wait for itself).
    thread: std::thread::ThreadId,
    /// This process (a child forked without exec inherits the handler, not the sentinel).
    pid: u32,
}

static FLUSH: OnceLock<Flush> = OnceLock::new();

/// Starts the sentinel for this worker, whose IPC socket is `ipc`: its output goes through it
/// from now on, and it watches the master. Once per process.
pub(crate) fn start(ipc: BorrowedFd<'_>) -> io::Result<()> {
    let streams = [redirect(1)?, redirect(2)?];
    let ipc = rustix::io::fcntl_dupfd_cloexec(ipc, 3)?;
    let (woken, wake) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    let thread = std::thread::Builder::new()
        .name("sentinel".into())
        .stack_size(64 * 1024)
        .spawn(move || watch(streams, ipc, woken))?;
    let flush = Flush {
        wake,
        done: Mutex::new(0),
        flushed: Condvar::new(),
        thread: thread.thread().id(),
        pid: std::process::id(),
    };
    if FLUSH.set(flush).is_ok() {
        // SAFETY: `flush_at_exit` is a plain `extern "C"` function that lives as long as the
        // process; registering it has no other requirement.
        if unsafe { libc::atexit(flush_at_exit) } != 0 {
            tracing::debug!("atexit failed: a fast exit may lose its last output");
        }
    }
    Ok(())
}

/// Runs when the process exits: waits (at most [`FLUSH_WAIT`]) until the sentinel has passed
/// on everything written so far.
extern "C" fn flush_at_exit() {
    let Some(flush) = FLUSH.get() else { return };
    if std::thread::current().id() == flush.thread || std::process::id() != flush.pid {
        return;
    }
    let before = *lock(&flush.done);
    if rustix::io::write(&flush.wake, &[1]).is_err() {
        return;
    }
    let deadline = Instant::now() + FLUSH_WAIT;
    let mut done = lock(&flush.done);
    while *done == before {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        done = match flush.flushed.wait_timeout(done, left) {
            Ok((done, _)) => done,
            Err(_) => return,
        };
    }
}

/// The sentinel's loop: forwards output, flushes when asked, and ends the process
/// [`EXIT_GRACE`] after the master's death.
fn watch(mut streams: [Stream; 2], ipc: OwnedFd, woken: OwnedFd) {
    let mut chunk = vec![0u8; CHUNK];
    let mut master_died: Option<Instant> = None;
    loop {
        let timeout = master_died.map(|died| {
            let left = (died + EXIT_GRACE).saturating_duration_since(Instant::now());
            Timespec::try_from(left).unwrap_or(Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            })
        });
        let (readable, wake, hung_up) = {
            let [out, err] = &streams;
            // A socket reports a hang-up whatever is asked: nothing is read from it here, and
            // once it has hung up it is not watched any more.
            let mut fds = [
                PollFd::new(&out.inner, PollFlags::IN),
                PollFd::new(&err.inner, PollFlags::IN),
                PollFd::new(&woken, PollFlags::IN),
                PollFd::new(&ipc, PollFlags::empty()),
            ];
            let watched = match master_died {
                None => &mut fds[..],
                Some(_) => &mut fds[..3],
            };
            match poll(watched, timeout.as_ref()) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => return,
            }
            let readable = [!fds[0].revents().is_empty(), !fds[1].revents().is_empty()];
            let hung_up = master_died.is_none()
                && fds[3]
                    .revents()
                    .intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL);
            (readable, !fds[2].revents().is_empty(), hung_up)
        };
        for (stream, readable) in streams.iter_mut().zip(readable) {
            if readable {
                stream.pass_on(&mut chunk);
            }
        }
        if wake {
            flush_all(&mut streams, &mut chunk, &woken);
        }
        if hung_up {
            master_died = Some(Instant::now());
        }
        if master_died.is_some_and(|died| died.elapsed() >= EXIT_GRACE) {
            // The master is gone: nobody reads the output any more, and nobody reaps this
            // process's status but init.
            // SAFETY: `_exit` ends the process at once; it touches no state of this one.
            unsafe { libc::_exit(1) };
        }
    }
}

/// Passes on everything written so far, and tells the exiting process it is done.
fn flush_all(streams: &mut [Stream; 2], chunk: &mut [u8], woken: &OwnedFd) {
    let mut byte = [0u8; 16];
    while matches!(rustix::io::read(woken.as_fd(), &mut byte), Ok(1..)) {}
    let deadline = Instant::now() + FLUSH_WAIT;
    for stream in streams.iter_mut() {
        stream.flush(chunk, deadline);
    }
    if let Some(flush) = FLUSH.get() {
        *lock(&flush.done) += 1;
        flush.flushed.notify_all();
    }
}
