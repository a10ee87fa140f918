//! Queue slots shared by the caller-side handle and the dispatcher: callers reserve one
//! without a round trip to the dispatcher, and may wait for one to free up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct QueueSlots {
    taken: AtomicUsize,
    max: usize,
    lock: Mutex<()>,
    freed: Condvar,
}

impl QueueSlots {
    pub fn new(max: usize) -> QueueSlots {
        QueueSlots {
            taken: AtomicUsize::new(0),
            max,
            lock: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    fn try_reserve(&self) -> bool {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes a slot, waiting up to `wait` for one to free up.
    pub fn reserve(&self, wait: Duration) -> bool {
        if self.try_reserve() {
            return true;
        }
        if wait.is_zero() {
            return false;
        }
        let deadline = Instant::now() + wait;
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.try_reserve() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self
                .freed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A queued task left the queue (dispatched, cancelled or failed).
    pub fn release(&self) {
        self.taken.fetch_sub(1, Ordering::AcqRel);
        // Taking the lock orders this with a waiter between its check and its wait.
        drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
        self.freed.notify_one();
    }

    /// A task went back into the queue (a retry) without a new reservation.
    pub fn put_back(&self) {
        self.taken.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn full_queue_refuses_at_once_and_waits_when_asked() {
        let slots = Arc::new(QueueSlots::new(1));
        assert!(slots.reserve(Duration::ZERO));
        assert!(!slots.reserve(Duration::ZERO));
        assert!(!slots.reserve(Duration::from_millis(20)));
        let other = Arc::clone(&slots);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            other.release();
        });
        assert!(slots.reserve(Duration::from_secs(5)));
        t.join().unwrap();
    }
}
