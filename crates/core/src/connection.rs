//! The connection policy as pure state: which host of the list to try next, and how long to wait
//! after a whole round of failures. The shell connects where this says and sleeps until the
//! instant it gives; no clock is read here, so failover and back-off are tested on virtual time.

use std::time::{Duration, Instant};

use crate::host_list::HostEntry;
use crate::session::ProtocolError;

/// The wait after the first round of failed hosts; it doubles after each further round.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two rounds.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How long connecting, and writing the final DISCONNECT, may take when Reply Timeout is 0 (off).
pub(crate) const FALLBACK_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the DISCONNECT of a deliberate close may take to write.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a deliberate reconnect waits for the broker to close the old connection.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// What the shell does next about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt<'a> {
    /// Connect to this host (an entry of the line's host list) and port now; an attempt with no
    /// answer within `timeout` (TCP, TLS and WebSocket handshakes) has failed.
    Connect {
        host: &'a str,
        port: u16,
        timeout: Duration,
    },
    /// Back off: try again at this instant (or earlier, when the line is restarted or stopped).
    Wait(Instant),
}

/// Why a connection (or an attempt to open one) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Lost, refused or timed out: the next host is tried, with back-off after a whole round.
    Lost,
    /// The line closed it itself.
    Deliberate(Deliberate),
}

/// Why the line closed a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deliberate {
    /// The line is being destroyed: no further attempt.
    Stop,
    /// Parameters changed or every station is off: start over at the first host, no back-off.
    Restart,
}

/// A connection the line closes itself: how, and the reason its `Disconnected` event and log give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    pub how: Deliberate,
    pub reason: &'static str,
}

impl Closing {
    /// The host stops the line.
    pub const STOP: Closing = Closing {
        how: Deliberate::Stop,
        reason: "the line was stopped",
    };
    /// The host changed the line's parameters: connect again with them.
    pub const NEW_PARAMETERS: Closing = Closing {
        how: Deliberate::Restart,
        reason: "line parameters changed",
    };
    /// No station is on: nothing is wanted from the broker. A restart, not a loss: when a station
    /// is switched on again the line connects to the first host at once, with no back-off.
    pub const NO_STATION_ON: Closing = Closing {
        how: Deliberate::Restart,
        reason: "every station is off or simulated",
    };
    /// `auth = azure-sas`: the token is renewed before it expires (line/sas.rs), by connecting
    /// again at once with a fresh one.
    pub const RENEW_TOKEN: Closing = Closing {
        how: Deliberate::Restart,
        reason: "the Azure SAS token is renewed before it expires",
    };

    /// Whether an open connection closes now, given what the host asked since the shell last
    /// looked (`stop`, `new_parameters`) and whether some station is on
    /// ([`Line::wants_connection`](crate::Line::wants_connection)), and whether the
    /// connection's token is due for renewal ([`Line::renewal_due`](crate::Line::renewal_due)).
    /// A stop wins.
    pub fn decide(
        stop: bool,
        new_parameters: bool,
        station_on: bool,
        renew_token: bool,
    ) -> Option<Closing> {
        if stop {
            Some(Closing::STOP)
        } else if new_parameters {
            Some(Closing::NEW_PARAMETERS)
        } else if !station_on {
            Some(Closing::NO_STATION_ON)
        } else if renew_token {
            Some(Closing::RENEW_TOKEN)
        } else {
            None
        }
    }
}

/// How the shell closes a connection the line ends itself: after writing the DISCONNECT the core
/// encoded (at most `write_within`) it shuts down its writes, then reads and discards until the
/// broker closes, at most `await_eof` (`None`: close at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Goodbye {
    pub write_within: Duration,
    pub await_eof: Option<Duration>,
}

impl Goodbye {
    /// Before a reconnect the line waits for the broker's close: a broker that serves each socket
    /// on its own thread could otherwise take the new CONNECT first for a session takeover and
    /// publish the line's will. A stop does not wait.
    pub(crate) fn for_close(why: Deliberate) -> Goodbye {
        Goodbye {
            write_within: DISCONNECT_TIMEOUT,
            await_eof: match why {
                Deliberate::Stop => None,
                Deliberate::Restart => Some(CLOSE_WAIT),
            },
        }
    }
}

impl Goodbye {
    /// Something sent before the DISCONNECT gets a reply (the PUBACK of a Sparkplug host's
    /// offline STATE): the shell reads until the broker closes, also on a stop. Closing with the
    /// reply unread would reset the connection, and a broker that sees the reset before it reads
    /// the DISCONNECT publishes the will as if the line had failed.
    pub(crate) fn awaiting_reply(self) -> Goodbye {
        Goodbye {
            await_eof: Some(CLOSE_WAIT),
            ..self
        }
    }
}

/// How long a connection attempt may take: the reply timeout, or [`FALLBACK_TIMEOUT`] when off.
pub(crate) fn connect_timeout(reply_timeout: Duration) -> Duration {
    if reply_timeout.is_zero() {
        FALLBACK_TIMEOUT
    } else {
        reply_timeout
    }
}

/// Host rotation and back-off over the line's host list.
#[derive(Debug, Clone)]
pub(crate) struct Reconnect {
    /// The host to try next, as an index into the list (taken modulo its length, which a
    /// reconfiguration may change).
    host_index: usize,
    /// Failed attempts since the round began; a full round starts a back-off.
    failures_in_round: usize,
    /// The wait after the next full round of failures.
    backoff: Duration,
    /// The back-off in progress: no attempt before this instant.
    wait_until: Option<Instant>,
    stopped: bool,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            host_index: 0,
            failures_in_round: 0,
            backoff: FIRST_BACKOFF,
            wait_until: None,
            stopped: false,
        }
    }
}

impl Reconnect {
    /// What to do at `now` with `hosts` (never empty: the configuration requires a host): an
    /// entry is tried at its own port, else at `default_port` (the line's `port`).
    /// `None` once the line was stopped.
    pub(crate) fn next_attempt<'a>(
        &mut self,
        now: Instant,
        hosts: &'a [HostEntry],
        default_port: u16,
        reply_timeout: Duration,
    ) -> Option<Attempt<'a>> {
        if self.stopped || hosts.is_empty() {
            return None;
        }
        match self.wait_until {
            Some(until) if now < until => return Some(Attempt::Wait(until)),
            _ => self.wait_until = None,
        }
        let entry = &hosts[self.host_index % hosts.len()];
        Some(Attempt::Connect {
            host: &entry.host,
            port: entry.port_or(default_port),
            timeout: connect_timeout(reply_timeout),
        })
    }

    /// The connection (or attempt) begun after the last [`Reconnect::next_attempt`] ended at
    /// `now`; `was_ready` says whether the broker accepted it (a ready connection ends the
    /// failures so far).
    pub(crate) fn connection_ended(
        &mut self,
        now: Instant,
        ended: Ended,
        was_ready: bool,
        host_count: usize,
    ) {
        match ended {
            Ended::Deliberate(Deliberate::Stop) => self.stopped = true,
            Ended::Deliberate(Deliberate::Restart) => self.restart(),
            Ended::Lost => {
                if was_ready {
                    self.backoff = FIRST_BACKOFF;
                    self.failures_in_round = 0;
                }
                let hosts = host_count.max(1);
                self.host_index = (self.host_index + 1) % hosts;
                self.failures_in_round += 1;
                if self.failures_in_round >= hosts {
                    self.failures_in_round = 0;
                    self.wait_until = Some(now + self.backoff);
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Start over at the first host, at once and with the first back-off (new parameters).
    pub(crate) fn restart(&mut self) {
        *self = Reconnect {
            stopped: self.stopped,
            ..Reconnect::default()
        };
    }
}

/// The transport's own deadlines within the reply timeout: a packet the broker began but did not
/// finish (half-read), and bytes handed to the socket that the broker does not take.
#[derive(Debug, Clone, Default)]
pub(crate) struct IoDeadlines {
    partial_since: Option<Instant>,
    writing_since: Option<Instant>,
}

impl IoDeadlines {
    /// After a read: whether part of a packet stays in the shell's buffer.
    pub(crate) fn partial_read(&mut self, now: Instant, pending: bool) {
        self.partial_since = if pending {
            self.partial_since.or(Some(now))
        } else {
            None
        };
    }

    /// Bytes were handed to the socket at `now` (an earlier unfinished write keeps its start).
    pub(crate) fn bytes_pending(&mut self, now: Instant) {
        self.writing_since = self.writing_since.or(Some(now));
    }

    /// The socket took every byte.
    pub(crate) fn flushed(&mut self) {
        self.writing_since = None;
    }

    /// The earliest deadline; none while `reply_timeout` is zero (off).
    pub(crate) fn poll_timeout(&self, reply_timeout: Duration) -> Option<Instant> {
        if reply_timeout.is_zero() {
            return None;
        }
        [self.partial_since, self.writing_since]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t + reply_timeout)
    }

    /// The reason to close the connection once a deadline passed at `now`.
    pub(crate) fn check(&self, now: Instant, reply_timeout: Duration) -> Result<(), ProtocolError> {
        let expired = |since: Option<Instant>| {
            !reply_timeout.is_zero() && since.is_some_and(|t| t + reply_timeout <= now)
        };
        if expired(self.partial_since) {
            return Err(ProtocolError::HalfRead(reply_timeout));
        }
        if expired(self.writing_since) {
            return Err(ProtocolError::WriteStalled(reply_timeout));
        }
        Ok(())
    }

    /// Reading was paused for `d`: the broker cannot finish a packet nobody reads.
    pub(crate) fn postpone(&mut self, d: Duration) {
        if let Some(t) = &mut self.partial_since {
            *t += d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<HostEntry> {
        names.iter().map(|s| HostEntry::new(*s)).collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The host to connect to at `now`, or the instant to wait for.
    fn next(r: &mut Reconnect, now: Instant, hosts: &[HostEntry]) -> Result<String, Instant> {
        match r.next_attempt(now, hosts, 1883, Duration::ZERO) {
            Some(Attempt::Connect {
                host,
                port,
                timeout,
            }) => {
                assert_eq!(port, 1883);
                assert_eq!(timeout, FALLBACK_TIMEOUT);
                Ok(host.to_string())
            }
            Some(Attempt::Wait(until)) => Err(until),
            None => panic!("the policy stopped"),
        }
    }

    #[test]
    fn rotates_over_the_hosts_and_backs_off_after_a_full_round() {
        let list = hosts(&["a", "b", "c"]);
        let mut r = Reconnect::default();
        let t0 = Instant::now();
        assert_eq!(next(&mut r, t0, &list), Ok("a".into()));
        r.connection_ended(t0, Ended::Lost, false, 3);
        assert_eq!(next(&mut r, t0, &list), Ok("b".into()));
        r.connection_ended(t0, Ended::Lost, false, 3);
        assert_eq!(next(&mut r, t0, &list), Ok("c".into()));
        r.connection_ended(t0, Ended::Lost, false, 3);
        // A whole round failed: wait the first back-off, then the first host again.
        assert_eq!(next(&mut r, t0, &list), Err(t0 + ms(250)));
        assert_eq!(next(&mut r, t0 + ms(249), &list), Err(t0 + ms(250)));
        assert_eq!(next(&mut r, t0 + ms(250), &list), Ok("a".into()));
    }

    #[test]
    fn each_entry_is_tried_at_its_own_port_or_the_lines() {
        let list = crate::host_list::parse_host_list("n1:1884; n2; [::1]:1886").expect("a list");
        let mut r = Reconnect::default();
        let now = Instant::now();
        let mut tried = Vec::new();
        for _ in 0..3 {
            match r.next_attempt(now, &list, 8883, Duration::ZERO) {
                Some(Attempt::Connect { host, port, .. }) => tried.push((host.to_string(), port)),
                other => panic!("expected an attempt, got {other:?}"),
            }
            r.connection_ended(now, Ended::Lost, false, list.len());
        }
        let want = [("n1", 1884), ("n2", 8883), ("::1", 1886)];
        let want: Vec<_> = want.iter().map(|(h, p)| (h.to_string(), *p)).collect();
        assert_eq!(tried, want);
    }

    #[test]
    fn the_back_off_doubles_per_round_up_to_ten_seconds() {
        let list = hosts(&["only"]);
        let mut r = Reconnect::default();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..8 {
            assert_eq!(next(&mut r, now, &list), Ok("only".into()));
            r.connection_ended(now, Ended::Lost, false, 1);
            let until = next(&mut r, now, &list).expect_err("a back-off");
            waits.push((until - now).as_millis());
            now = until;
        }
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
    }

    #[test]
    fn a_ready_connection_resets_the_back_off_and_the_round() {
        let list = hosts(&["a", "b"]);
        let mut r = Reconnect::default();
        let mut now = Instant::now();
        // Two failed rounds: the back-off has grown to 1 s.
        for _ in 0..2 {
            for _ in 0..2 {
                next(&mut r, now, &list).expect("an attempt");
                r.connection_ended(now, Ended::Lost, false, 2);
            }
            now = next(&mut r, now, &list).expect_err("a back-off");
        }
        assert_eq!(next(&mut r, now, &list), Ok("a".into()));
        // This connection was ready before it was lost: the next host at once, and after its
        // failure the round is complete with the first back-off again.
        r.connection_ended(now, Ended::Lost, true, 2);
        assert_eq!(next(&mut r, now, &list), Ok("b".into()));
        r.connection_ended(now, Ended::Lost, false, 2);
        assert_eq!(next(&mut r, now, &list), Err(now + ms(250)));
    }

    #[test]
    fn a_deliberate_restart_goes_to_the_first_host_at_once() {
        let list = hosts(&["a", "b"]);
        let mut r = Reconnect::default();
        let now = Instant::now();
        for _ in 0..2 {
            next(&mut r, now, &list).expect("an attempt");
            r.connection_ended(now, Ended::Lost, false, 2);
        }
        next(&mut r, now, &list).expect_err("a back-off");
        r.restart();
        assert_eq!(next(&mut r, now, &list), Ok("a".into()));
        r.connection_ended(now, Ended::Lost, false, 2);
        assert_eq!(next(&mut r, now, &list), Ok("b".into()));
        r.connection_ended(now, Ended::Deliberate(Deliberate::Restart), true, 2);
        assert_eq!(next(&mut r, now, &list), Ok("a".into()));
    }

    #[test]
    fn a_stop_never_backs_off_nor_tries_again() {
        let list = hosts(&["a"]);
        let mut r = Reconnect::default();
        let now = Instant::now();
        next(&mut r, now, &list).expect("an attempt");
        r.connection_ended(now, Ended::Deliberate(Deliberate::Stop), true, 1);
        assert_eq!(r.next_attempt(now, &list, 1883, ms(1)), None);
        r.restart();
        assert_eq!(r.next_attempt(now, &list, 1883, ms(1)), None);
    }

    #[test]
    fn a_shorter_host_list_after_reconfiguration_stays_in_range() {
        let long = hosts(&["a", "b", "c"]);
        let short = hosts(&["x"]);
        let mut r = Reconnect::default();
        let now = Instant::now();
        next(&mut r, now, &long).expect("an attempt");
        r.connection_ended(now, Ended::Lost, false, 3);
        next(&mut r, now, &long).expect("an attempt");
        r.connection_ended(now, Ended::Lost, false, 3);
        assert_eq!(next(&mut r, now, &short), Ok("x".into()));
    }

    const REPLY: Duration = Duration::from_secs(5);

    #[test]
    fn a_half_read_packet_closes_after_the_reply_timeout() {
        let mut d = IoDeadlines::default();
        let t0 = Instant::now();
        d.partial_read(t0, true);
        // More bytes of the same packet do not move the deadline.
        d.partial_read(t0 + ms(3000), true);
        assert_eq!(d.poll_timeout(REPLY), Some(t0 + REPLY));
        assert_eq!(d.check(t0 + REPLY - ms(1), REPLY), Ok(()));
        assert_eq!(
            d.check(t0 + REPLY, REPLY),
            Err(ProtocolError::HalfRead(REPLY))
        );
        // The packet completed: nothing is due any more.
        d.partial_read(t0 + ms(4000), false);
        assert_eq!(d.poll_timeout(REPLY), None);
        assert_eq!(d.check(t0 + REPLY, REPLY), Ok(()));
    }

    #[test]
    fn bytes_the_broker_does_not_take_close_after_the_reply_timeout() {
        let mut d = IoDeadlines::default();
        let t0 = Instant::now();
        d.bytes_pending(t0);
        d.bytes_pending(t0 + ms(1000));
        assert_eq!(d.poll_timeout(REPLY), Some(t0 + REPLY));
        assert_eq!(
            d.check(t0 + REPLY, REPLY),
            Err(ProtocolError::WriteStalled(REPLY))
        );
        d.flushed();
        assert_eq!(d.poll_timeout(REPLY), None);
        assert_eq!(d.check(t0 + REPLY, REPLY), Ok(()));
    }

    #[test]
    fn no_io_deadline_while_the_reply_timeout_is_off() {
        let mut d = IoDeadlines::default();
        let t0 = Instant::now();
        d.partial_read(t0, true);
        d.bytes_pending(t0);
        assert_eq!(d.poll_timeout(Duration::ZERO), None);
        assert_eq!(
            d.check(t0 + Duration::from_secs(3600), Duration::ZERO),
            Ok(())
        );
    }

    #[test]
    fn a_pause_in_reading_postpones_the_half_read_deadline_only() {
        let mut d = IoDeadlines::default();
        let t0 = Instant::now();
        d.partial_read(t0, true);
        d.postpone(ms(2000));
        assert_eq!(d.poll_timeout(REPLY), Some(t0 + REPLY + ms(2000)));
        d.bytes_pending(t0);
        assert_eq!(d.poll_timeout(REPLY), Some(t0 + REPLY));
    }

    #[test]
    fn a_restart_waits_for_the_brokers_close_and_a_stop_does_not() {
        let restart = Goodbye::for_close(Deliberate::Restart);
        assert_eq!(restart.await_eof, Some(Duration::from_secs(1)));
        assert_eq!(restart.write_within, Duration::from_secs(1));
        assert_eq!(Goodbye::for_close(Deliberate::Stop).await_eof, None);
    }

    #[test]
    fn an_attempt_may_take_the_reply_timeout_or_twenty_seconds_when_off() {
        assert_eq!(connect_timeout(REPLY), REPLY);
        assert_eq!(connect_timeout(Duration::ZERO), Duration::from_secs(20));
    }
}
