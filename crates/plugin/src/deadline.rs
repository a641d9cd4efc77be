//! The core's next deadline as one tokio timer kept for a whole connection.
//!
//! A connection loop used to make a new `Sleep` for every turn: each registered itself with the
//! runtime's timer on its first poll and left it again when dropped, and whenever its deadline
//! was earlier than the one the runtime had slept towards (the 1 ms hold of PUBACKs under load,
//! say) tokio also woke its own driver through an eventfd: a `write` and one more `epoll_wait`
//! for every second message of a QoS 1 flood. One timer, moved only when the deadline changes,
//! costs nothing when the deadline moves later (tokio only notes the new time) and registers
//! again only when it moves earlier.

use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::time::Sleep;

pub(crate) struct DeadlineTimer {
    sleep: Pin<Box<Sleep>>,
    /// The deadline the timer is set to; `None` while the core has none, or once it fired.
    armed: Option<Instant>,
}

impl DeadlineTimer {
    pub(crate) fn new() -> DeadlineTimer {
        // Registered with the runtime only once it is set.
        let idle = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        DeadlineTimer {
            sleep: Box::pin(tokio::time::sleep_until(idle.into())),
            armed: None,
        }
    }

    /// Sets the timer to the core's `deadline` (`None`: no deadline, the timer never fires).
    pub(crate) fn set(&mut self, deadline: Option<Instant>) {
        if deadline == self.armed {
            return;
        }
        if let Some(d) = deadline {
            self.sleep.as_mut().reset(d.into());
        }
        self.armed = deadline;
    }

    /// Whether a deadline is set and has not fired yet.
    pub(crate) fn is_set(&self) -> bool {
        self.armed.is_some()
    }

    /// Resolves when the deadline set last has passed; never while there is none. After it
    /// resolved, the timer needs a new [`DeadlineTimer::set`] (the same deadline included).
    pub(crate) async fn fired(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_deadline_set_last_and_not_without_one() {
        use tokio::time::Instant as Clock;
        let mut timer = DeadlineTimer::new();
        let start = Clock::now();
        // No deadline: never fires (the paused clock jumps to any registered time at once).
        let never = tokio::time::timeout(Duration::from_secs(3600), timer.fired()).await;
        assert!(never.is_err(), "fired without a deadline");
        assert!(!timer.is_set());
        let later = Clock::now() + Duration::from_secs(10);
        timer.set(Some(later.into_std()));
        timer.set(Some((later - Duration::from_secs(5)).into_std()));
        assert!(timer.is_set());
        timer.fired().await;
        assert!(!timer.is_set(), "still set once fired");
        assert_eq!(Clock::now(), start + Duration::from_secs(3600 + 5));
        // Once fired, the same deadline is set again before it fires again.
        let now = Clock::now().into_std();
        timer.set(Some(now));
        timer.fired().await;
        timer.set(None);
        let taken = tokio::time::timeout(Duration::from_secs(60), timer.fired()).await;
        assert!(taken.is_err(), "fired after its deadline was taken away");
    }
}
