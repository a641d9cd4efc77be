//! Wakes the main loop from other threads: the plugin's notify callback and the stdin reader.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// A level-triggered flag: a wake-up that arrives while nobody waits is kept for the next wait.
#[derive(Default)]
pub struct Waker {
    pending: Mutex<bool>,
    cond: Condvar,
}

impl Waker {
    pub fn wake(&self) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cond.notify_one();
    }

    /// Waits until woken or `timeout` passes, and clears the flag.
    pub fn wait(&self, timeout: Duration) {
        let guard = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut pending, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |pending| !*pending)
            .unwrap_or_else(PoisonError::into_inner);
        *pending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn an_early_wake_is_not_lost() {
        let w = Waker::default();
        w.wake();
        let start = Instant::now();
        w.wait(Duration::from_secs(5));
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
