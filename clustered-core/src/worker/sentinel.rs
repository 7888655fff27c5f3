//! The worker's sentinel: one thread, outside the worker's runtime, that sleeps in `poll` on
//! the process's output pipes, on a pipe of its own, and on the IPC socket, so it works while
//! the runtime is blocked or busy:
//!
//! - it passes the worker's output on to the master (`output.rs`);
//! - when the process exits (`main` returns or errs, `std::process::exit`, a panic that ends
//!   `main`, a drain after SIGTERM), an `atexit` handler wakes it and waits (at most
//!   [`FLUSH_WAIT`]) until everything written so far is passed on: a dying worker's last lines
//!   arrive whole, and they are what a crash-loop error quotes;
//! - when the master dies (the IPC socket hangs up, and this process is handed to another
//!   parent), it gives the worker [`EXIT_GRACE`] to end on its own, then ends the process,
//!   whatever it was doing (booting, blocked, waiting on a request): no worker outlives its
//!   master by more than a second. A hang-up of the worker's own doing (it shuts the socket
//!   after an IPC error) leaves its drain alone.
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

/// How long after the IPC socket hung up the sentinel looks for a sign that the master died
/// (this process handed to another parent) before it takes the hang-up for this worker's own.
const ORPHAN_CHECK: Duration = Duration::from_secs(1);

/// What the sentinel knows of the master.
#[derive(Debug, Clone, Copy)]
enum Master {
    /// The IPC socket is open: watched for a hang-up.
    Watched,
    /// The socket hung up at `since`. The master died if this process gets another parent
    /// (the kernel closes a dying process's descriptors just before it hands its children on);
    /// if it keeps its parent, this worker shut the socket itself (after an IPC error).
    HungUp { since: Instant },
    /// The master died at `since`: the process ends [`EXIT_GRACE`] later.
    Died { since: Instant },
    /// The socket hung up and the master lives: not watched any more.
    Alive,
}

impl Master {
    /// How long `poll` may sleep before this needs looking at again.
    fn timeout(self) -> Option<Timespec> {
        let left = match self {
            Master::Watched | Master::Alive => return None,
            Master::HungUp { .. } => Duration::from_millis(10),
            Master::Died { since } => {
                (since + EXIT_GRACE).saturating_duration_since(Instant::now())
            }
        };
        Some(Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }))
    }

    /// The next state, given whether the socket has just hung up and who the parent is now.
    fn next(self, hung_up: bool, parent: Option<rustix::process::Pid>) -> Master {
        match self {
            Master::Watched if hung_up => Master::HungUp {
                since: Instant::now(),
            },
            Master::HungUp { since } if rustix::process::getppid() != parent => {
                Master::Died { since }
            }
            Master::HungUp { since } if since.elapsed() >= ORPHAN_CHECK => Master::Alive,
            other => other,
        }
    }
}

/// The sentinel's loop: forwards output, flushes when asked, and ends the process
/// [`EXIT_GRACE`] after the master's death.
fn watch(mut streams: [Stream; 2], ipc: OwnedFd, woken: OwnedFd) {
    let mut chunk = vec![0u8; CHUNK];
    let parent = rustix::process::getppid();
    let mut master = Master::Watched;
    // A stream nobody writes to any more (its descriptor closed by the program) is not
    // watched: it would read as ready for good.
    let mut open = [true; 2];
    loop {
        let (readable, wake, hung_up) = {
            let mut fds = vec![PollFd::new(&woken, PollFlags::IN)];
            let watched: Vec<usize> = (0..2).filter(|index| open[*index]).collect();
            fds.extend(
                watched
                    .iter()
                    .map(|index| PollFd::new(&streams[*index].inner, PollFlags::IN)),
            );
            // A socket reports a hang-up whatever is asked: nothing is read from it here.
            if matches!(master, Master::Watched) {
                fds.push(PollFd::new(&ipc, PollFlags::empty()));
            }
            match poll(&mut fds, master.timeout().as_ref()) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => return,
            }
            let mut readable = [false; 2];
            for (slot, index) in watched.iter().enumerate() {
                readable[*index] = !fds[slot + 1].revents().is_empty();
            }
            let hung_up = matches!(master, Master::Watched)
                && fds.last().is_some_and(|fd| {
                    fd.revents()
                        .intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL)
                });
            (readable, !fds[0].revents().is_empty(), hung_up)
        };
        for (index, stream) in streams.iter_mut().enumerate() {
            if readable[index] && !stream.pass_on(&mut chunk) {
                open[index] = false;
            }
        }
        if wake {
            flush_all(&mut streams, &mut chunk, &woken);
        }
        master = master.next(hung_up, parent);
        if let Master::Died { since } = master
            && since.elapsed() >= EXIT_GRACE
        {
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
