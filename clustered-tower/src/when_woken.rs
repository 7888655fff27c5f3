//! [`WhenWoken`]: a future that is polled only when it asked to be.
//!
//! A connection's task is woken for every read and write of its socket, and `select!` polls
//! every branch on every wake. The branches beside the connection (the drain signal, the
//! watchdog's timer) are woken a few times in a connection's life, yet polling them cost a
//! keep-alive request about 580 instructions and an HTTP/2 one about 350 (a watch's
//! notification, a timer entry's registration, the random start). Wrapped, each is polled
//! with a waker of its own and skipped (one atomic swap) until that waker fires.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use pin_project_lite::pin_project;

pin_project! {
    /// Polls `inner` on its first poll and then only after `inner` woke its waker.
    pub(crate) struct WhenWoken<F> {
        #[pin]
        inner: F,
        signal: Arc<Signal>,
        waker: Waker,
    }
}

impl<F: Future> WhenWoken<F> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: F) -> Self {
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&signal));
        Self {
            inner,
            signal,
            waker,
        }
    }
}

impl<F: Future> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Registered before the flag is read: a wake-up between the two still wakes the task.
        this.signal.task.register(cx.waker());
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.inner.poll(&mut Context::from_waker(this.waker))
    }
}

/// What `inner`'s waker does: note the wake-up and pass it on to the task.
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::Cell;
    use std::rc::Rc;

    /// A future that counts its polls and is ready at its third.
    fn counted(polls: Rc<Cell<u32>>) -> impl Future<Output = u32> {
        std::future::poll_fn(move |cx| {
            polls.set(polls.get() + 1);
            match polls.get() {
                3 => Poll::Ready(3),
                _ => {
                    // Asks to be polled again only on its first poll.
                    if polls.get() == 1 {
                        cx.waker().wake_by_ref();
                    }
                    Poll::Pending
                }
            }
        })
    }

    #[test]
    fn it_is_polled_first_and_then_only_after_a_wake_up() {
        let polls = Rc::new(Cell::new(0));
        let mut future = Box::pin(WhenWoken::new(counted(Rc::clone(&polls))));
        let mut cx = Context::from_waker(Waker::noop());
        // First poll: polled, and it woke itself.
        assert!(future.as_mut().poll(&mut cx).is_pending());
        // Second: polled again (it asked), and it did not wake itself this time.
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.get(), 2);
        // Woken by nothing: skipped, however often the task polls.
        for _ in 0..5 {
            assert!(future.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.get(), 2);
        // Its waker fires: polled, and ready.
        future.waker.wake_by_ref();
        assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(3));
        assert_eq!(polls.get(), 3);
    }

    #[test]
    fn its_wake_up_wakes_the_task() {
        struct Count(std::sync::atomic::AtomicU32);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let task = Arc::new(Count(Default::default()));
        let task_waker = Waker::from(Arc::clone(&task));
        let mut future = Box::pin(WhenWoken::new(std::future::pending::<()>()));
        assert!(
            future
                .as_mut()
                .poll(&mut Context::from_waker(&task_waker))
                .is_pending()
        );
        future.waker.wake_by_ref();
        assert_eq!(task.0.load(Ordering::Relaxed), 1);
    }
}
