//! The IO-free core of the mqtt-line driver.
//!
//! Nothing here touches a socket, a thread or the clock by itself: the shell feeds packets, time
//! and host requests into a [`line::Line`] and carries out what comes back (packets to send,
//! events for the host, the next deadline). That keeps every rule testable with plain unit tests.

pub mod ack_gate;
pub mod codec;
pub mod config;
pub mod error;
pub mod event;
pub mod ids;
pub mod json_extract;
pub mod json_path;
pub mod json_value;
pub mod line;
pub mod params;
pub mod payload;
pub mod routing;
pub mod session;
pub mod station;
pub mod tag;
pub mod text;
pub mod time_mask;
pub mod value;

pub use config::{LineConfig, PayloadType};
pub use error::ConfigError;
pub use event::{Event, LineEvent};
pub use ids::{StationId, TagId, WriteToken};
pub use line::Line;
pub use station::{StationCommand, StationState};
pub use value::{Value, ValueType};
