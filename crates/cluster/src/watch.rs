//! openraft's watch channel (latest value plus change notification), with
//! a fixed wake order. tokio's `watch` parks each waiter on one of eight
//! queues picked at random, so tasks waiting on one channel wake in a
//! random order, and a simulated run could not replay. Here all waiters
//! share one `Notify` queue. Semantics follow tokio's: `changed` reports
//! each new version once and fails when every sender is gone and nothing
//! new is left; `send` fails (and stores nothing) when no receiver is left.

use openraft::async_runtime::watch::{RecvError, SendError};
use openraft::async_runtime::{Watch, WatchReceiver, WatchSender};
use openraft::{OptionalSend, OptionalSync};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use tokio::sync::Notify;

/// The [`Watch`] of [`crate::runtime::TandemRuntime`].
pub struct FifoWatch;

struct Shared<T> {
    value: RwLock<T>,
    /// Bumped by every change, under the value's write lock.
    version: AtomicU64,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    changed: Notify,
}

impl<T> Shared<T> {
    fn read(&self) -> RwLockReadGuard<'_, T> {
        self.value.read().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Sender<T>(Arc<Shared<T>>);

pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this receiver last saw.
    seen: u64,
}

impl Watch for FifoWatch {
    type Sender<T: OptionalSend + OptionalSync> = Sender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = Receiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = RwLockReadGuard<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(Shared {
            value: RwLock::new(init),
            version: AtomicU64::new(0),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            changed: Notify::new(),
        });
        let receiver = Receiver {
            shared: shared.clone(),
            seen: 0,
        };
        (Sender(shared), receiver)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::SeqCst);
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<FifoWatch, T> for Sender<T> {
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.0.receivers.load(Ordering::SeqCst) == 0 {
            return Err(SendError(value));
        }
        self.send_if_modified(|current| {
            *current = value;
            true
        });
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        let modified = {
            let mut value = self.0.value.write().unwrap_or_else(|p| p.into_inner());
            let modified = modify(&mut value);
            if modified {
                self.0.version.fetch_add(1, Ordering::SeqCst);
            }
            modified
        };
        if modified {
            self.0.changed.notify_waiters();
        }
        modified
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.0.read()
    }

    fn subscribe(&self) -> Receiver<T> {
        self.0.receivers.fetch_add(1, Ordering::SeqCst);
        Receiver {
            shared: self.0.clone(),
            seen: self.0.version.load(Ordering::SeqCst),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::SeqCst);
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<FifoWatch, T> for Receiver<T> {
    async fn changed(&mut self) -> Result<(), RecvError> {
        loop {
            // Registered before the checks, so a change between the check
            // and the await still wakes this waiter.
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let version = self.shared.version.load(Ordering::SeqCst);
            if version != self.seen {
                self.seen = version;
                return Ok(());
            }
            if self.shared.senders.load(Ordering::SeqCst) == 0 {
                return Err(RecvError(()));
            }
            notified.await;
        }
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.read()
    }

    fn borrow_and_update(&mut self) -> RwLockReadGuard<'_, T> {
        let value = self.shared.read();
        self.seen = self.shared.version.load(Ordering::SeqCst);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_wakes_the_receiver_once_and_a_closed_channel_ends_it() {
        let (tx, mut rx) = FifoWatch::channel(1);
        let waiter = tokio::spawn(async move {
            rx.changed().await.unwrap();
            let seen = *rx.borrow_watched();
            (seen, rx.changed().await.is_err())
        });
        tokio::task::yield_now().await;
        tx.send(2).unwrap();
        drop(tx);
        assert_eq!(waiter.await.unwrap(), (2, true));
    }

    #[test]
    fn sending_without_receivers_fails_and_keeps_the_value() {
        let (tx, rx) = FifoWatch::channel(1);
        drop(rx);
        assert!(tx.send(2).is_err());
        assert_eq!(*tx.borrow_watched(), 1);
        let rx = tx.subscribe();
        assert!(tx.send(3).is_ok());
        assert_eq!(*rx.borrow_watched(), 3);
    }
}
