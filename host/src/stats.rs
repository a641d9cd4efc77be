//! The line's and its stations' counters (ABI 1.2) as plain Rust values; docs/abi.md says what
//! each counts.

use mqtt_line_abi::{MqlLineStats, MqlStationStats};

/// A host struct of counters: the state, each counter that a list of plugin-abi names
/// (`line_counters!`, `station_counters!`) with its help as documentation, and the time of the
/// last message; and `from_abi`, which reads them from the C struct.
macro_rules! stats_struct {
    ($name:ident, $abi:ident, $what:literal, $($field:ident, $help:literal;)*) => {
        #[doc = concat!("The counters and state of ", $what, "; docs/abi.md says what each counts.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            /// An `MQL_LINE_*` or `MQL_STATION_*` state; `None` before one was reported.
            pub state: Option<u32>,
            $(#[doc = $help] pub $field: u64,)*
            /// When the last message arrived (ns since the Unix epoch); `None` before the first.
            pub last_message_ns: Option<i64>,
        }

        impl $name {
            pub fn from_abi(s: &$abi) -> $name {
                $name {
                    state: nonzero(s.state),
                    $($field: s.$field,)*
                    last_message_ns: nonzero(s.last_message_ns),
                }
            }
        }
    };
}

macro_rules! line_stats {
    ($($field:ident, $kind:ident, $metric:literal, $help:literal;)*) => {
        stats_struct!(LineStats, MqlLineStats, "a line, from `line_stats`", $($field, $help;)*);
    };
}

macro_rules! station_stats {
    ($($field:ident, $kind:ident, $metric:literal, $help:literal;)*) => {
        stats_struct!(
            StationStats,
            MqlStationStats,
            "a station, from `line_station_stats`",
            $($field, $help;)*
        );
    };
}

mqtt_line_abi::line_counters!(line_stats);
mqtt_line_abi::station_counters!(station_stats);

/// The state and counters of one connection of a redundant line (ABI 1.3), read from
/// `MqlLineStats`' `link_a_*` and `link_b_*` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionStats {
    /// Its `MQL_LINE_*` state; `None` before one was reported.
    pub state: Option<u32>,
    /// Messages received through it, copies included.
    pub received: u64,
    /// Of those, copies of a message the other connection delivered first: not shown.
    pub duplicates: u64,
    /// Connections made again after a ready one was lost or closed.
    pub reconnects: u64,
    /// Connections to a broker attempted.
    pub connection_attempts: u64,
}

impl ConnectionStats {
    /// Connections A and B, from the C struct (a plugin older than ABI 1.3 leaves them zero).
    pub fn from_abi(s: &MqlLineStats) -> [ConnectionStats; 2] {
        [
            ConnectionStats {
                state: nonzero(s.link_a_state),
                received: s.link_a_received,
                duplicates: s.link_a_duplicates,
                reconnects: s.link_a_reconnects,
                connection_attempts: s.link_a_connection_attempts,
            },
            ConnectionStats {
                state: nonzero(s.link_b_state),
                received: s.link_b_received,
                duplicates: s.link_b_duplicates,
                reconnects: s.link_b_reconnects,
                connection_attempts: s.link_b_connection_attempts,
            },
        ]
    }
}

/// 0 means "none" in the C structs.
fn nonzero<T: Default + PartialEq>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_times_and_states_read_as_none() {
        let s = LineStats::from_abi(&MqlLineStats {
            received: 3,
            ..MqlLineStats::default()
        });
        assert_eq!((s.state, s.last_message_ns, s.received), (None, None, 3));
        let s = StationStats::from_abi(&MqlStationStats {
            state: mqtt_line_abi::MQL_STATION_OK,
            last_message_ns: 7,
            ..MqlStationStats::default()
        });
        assert_eq!(
            (s.state, s.last_message_ns),
            (Some(mqtt_line_abi::MQL_STATION_OK), Some(7))
        );
    }
}
