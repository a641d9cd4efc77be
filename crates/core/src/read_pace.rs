//! Reads under load wait a moment: while messages arrive faster than the line reads them one
//! wake-up at a time, the next read of a connection waits [`PAUSE`], so that it takes what
//! arrived meanwhile in one go.
//!
//! Why: a broker forwards each message on its own, and a line faster than its broker wakes up
//! for every few of them. Each wake-up costs the same system calls whatever it brings (a read,
//! the wait for the socket, the host's wake-up, and the PUBACKs' write), and on a virtual
//! machine a system call costs about as much as handling a small message. Measured on a
//! Sparkplug NDATA stream at QoS 1 (docs/benchmarks.md, round 15): reads went from 7 to about
//! 45 messages each and the line's CPU per message fell by about a quarter.
//!
//! The rule (docs/decisions.md, "Reads under load"):
//! - a read that comes within [`LOADED_WITHIN`] of when reading was allowed (after the read
//!   before, or at the end of a pause) means messages are waiting for the line: the next read
//!   waits until [`PAUSE`] after this one;
//! - only while the bytes arrive at less than [`ENOUGH`] per [`PAUSE`] (judged by the read:
//!   its bytes over the time since reading was allowed): faster, the reads are large by
//!   themselves, and a pause would let a flood fill the socket's buffer and stop its sender;
//! - only after a read that brought two messages or more: a read of one message is a quiet
//!   line's, or a broker's whose window of unacknowledged QoS 1 messages is one (set for strict
//!   order), and paused after each of those reads such a broker would send one message a pause;
//! - a line with a message now and then reads each at once: the first message after a quiet
//!   moment is never held, and no value waits longer than [`PAUSE`] (plus the shell's timer
//!   resolution) for its read.
//!
//! The broker's window of unacknowledged QoS 1 messages bounds what one read can bring; the
//! PUBACKs of a read leave before the pause (ack_batch.rs holds them at most for the same
//! moment), so the broker refills its window while the line waits.

use std::time::{Duration, Instant};

/// How long a read under load waits after the one before.
const PAUSE: Duration = Duration::from_millis(1);

/// Bytes arriving at this many per [`PAUSE`] or more are read at once: a wake-up is paid for by
/// so many bytes of small messages, and a pause's bytes stay far below a socket's buffer.
const ENOUGH: u64 = 32 * 1024;

/// A read this soon after reading was allowed is a read under load. Twice the pause: a pause's
/// timer may fire up to a millisecond late (the shell's timer resolution), and the read after
/// it still finds messages waiting.
const LOADED_WITHIN: Duration = Duration::from_millis(2);

/// One connection's pace of reading.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadPace {
    /// When reading was last allowed: after a read, or when a pause ends. `None` on a new
    /// connection.
    allowed: Option<Instant>,
    /// The connection's messages received until the read before (a count of the line's).
    received: u64,
}

impl ReadPace {
    /// A read of `bytes` was handled at `now`, after which the connection had received
    /// `received` messages in all. Returns when the next read may be, `None`: at once.
    pub(crate) fn after_read(
        &mut self,
        now: Instant,
        bytes: usize,
        received: u64,
    ) -> Option<Instant> {
        let messages = received.wrapping_sub(self.received);
        self.received = received;
        let slow_load = messages > 1
            && self.allowed.is_some_and(|t| {
                let since = now.saturating_duration_since(t);
                // bytes / since < ENOUGH / PAUSE, in whole numbers.
                since <= LOADED_WITHIN
                    && bytes as u128 * PAUSE.as_nanos() < u128::from(ENOUGH) * since.as_nanos()
            });
        if slow_load {
            let until = now + PAUSE;
            self.allowed = Some(until);
            Some(until)
        } else {
            self.allowed = Some(now);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn reads_close_together_wait_and_a_quiet_line_reads_at_once() {
        let t0 = Instant::now();
        // (read at, bytes, messages, paused until): a quiet start, messages arriving slowly
        // enough to wait for, a flood, the slow messages again, a quiet moment, and reads of one
        // message each.
        let small = 400;
        let steps: [(Duration, usize, u32, Option<Duration>); 12] = [
            // The first read of a connection: nothing to compare with.
            (ms(0), small, 2, None),
            // 10 ms later: quiet, read at once.
            (ms(10), small, 2, None),
            // 50 us after reading was allowed (less than 1,638 bytes in that time): the next read
            // waits a millisecond.
            (ms(10) + us(50), small, 2, Some(ms(11) + us(50))),
            // Read when the pause's timer fired, late by most of a millisecond, and fewer bytes
            // than that time's 31,129: still waited for.
            (ms(12), 30_000, 40, Some(ms(13))),
            // 4,000 bytes 100 us after the pause (more than its 3,276): a flood, read at once...
            (ms(13) + us(100), 4_000, 10, None),
            // ...and slow again right after: waits.
            (ms(13) + us(110), 300, 2, Some(ms(14) + us(110))),
            // The messages stopped: the next ones, 5 ms after reading was allowed, are read at
            // once.
            (ms(19), small, 2, None),
            // Two more 2.5 ms later are read at once too...
            (ms(21) + us(500), small, 2, None),
            // ...and two 2 ms after that are the start of a load again.
            (ms(23) + us(500), small, 2, Some(ms(24) + us(500))),
            // One message a read (a broker's window of one, or a slow source): read at once.
            (ms(24) + us(600), small, 1, None),
            (ms(24) + us(700), small, 1, None),
            // Two in a read: waited for again.
            (ms(24) + us(800), small, 2, Some(ms(25) + us(800))),
        ];
        let mut pace = ReadPace::default();
        let mut received = 0;
        for (i, (at, bytes, messages, want)) in steps.into_iter().enumerate() {
            received += u64::from(messages);
            let got = pace.after_read(t0 + at, bytes, received);
            assert_eq!(got, want.map(|w| t0 + w), "step {i}: a read at {at:?}");
        }
    }
}
