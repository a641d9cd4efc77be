//! The IO-free core of the mqtt-line driver.
//!
//! Nothing here touches a socket, a thread or the clock by itself: the shell feeds packets, time
//! and host requests into a [`Line`] and carries out what comes back (packets to send, events for
//! the host, the next deadline). That keeps every rule testable with plain unit tests.
//!
//! The modules are private; what the shell (crates/plugin) and the core's own tests, benches and
//! fuzz targets use is re-exported here: the line and its configuration at the root, the MQTT wire
//! in [`mqtt`], and building blocks measured or fuzzed on their own in [`parts`].

mod ack_batch;
mod ack_gate;
mod azure_sas;
mod codec;
mod config;
mod config_redundant;
mod config_v5;
mod connection;
mod csv;
mod duplicates;
mod error;
mod event;
mod gzip;
mod host_list;
mod ids;
mod json_extract;
mod json_path;
mod json_plan;
mod json_value;
mod limits;
mod line;
mod packet;
mod params;
mod payload;
mod payload_params;
mod proxy_url;
mod read_pace;
mod reason;
mod routing;
mod session;
mod sparkplug;
mod stale;
mod station;
mod station_filter;
mod tag;
mod text;
mod time_mask;
mod tls_psk;
mod v4;
mod v5_frame;
mod value;

pub use azure_sas::SasKeyError;
pub use config::{Auth, LineConfig, PasswordSource, Transport, Warnings};
pub use config_redundant::RedundantConfig;
pub use connection::{Attempt, Closing, Deliberate, Ended, Goodbye};
pub use error::ConfigError;
pub use event::{
    Event, LineEvent, LogLevel, RouteOutcome, FLAG_DUPLICATE, FLAG_RETAINED,
    FLAG_TIME_FROM_PAYLOAD, FLAG_VALID, ROUTE_PAYLOAD_MAX,
};
pub use gzip::Encoding;
pub use host_list::{parse_host_list, HostEntry, HostListError};
pub use ids::{StationId, TagId, WriteToken};
pub use line::{
    EdgeFiles, Line, LineState, LineStats, LinkId, LinkStats, StationStats, Unsendable,
};
pub use params::Secret;
pub use payload::escape;
pub use payload_params::{PayloadParams, PayloadType};
pub use proxy_url::{host_port, ProxyConfig, ProxyKind};
pub use sparkplug::store::StoreFile;
pub use station::{StationCommand, StationParams, StationState};
pub use tls_psk::{decode_psk_key, PskKeySource};
pub use value::{Value, ValueType};

/// MQTT 3.1.1 and 5 on the wire: rumqttc's v5 packet types (the session's, for both versions),
/// and reading, writing and describing packets with the checks the codec leaves out.
pub mod mqtt {
    pub use crate::codec::{
        conn_ack, describe, read_packet, sub_ack, write_packet, ConnAck, ConnAckProperties,
        ConnectReturnCode, Disconnect, DisconnectProperties, DisconnectReasonCode, Packet, PingReq,
        PingResp, Protocol, PubAck, PubAckReason, PubComp, PubRec, PubRecReason, PubRel, Publish,
        PublishProperties, QoS, SubAck, SubscribeReasonCode, UnsubAck,
    };
    pub use crate::session::{Session, SessionConfig};
}

/// Building blocks that the benches measure and the fuzz targets exercise on their own: the
/// routing table, JSON paths and extraction, payload parsing and time masks.
pub mod parts {
    pub use crate::csv::split as split_csv;
    pub use crate::gzip::inflate;
    pub use crate::json_extract::PathTree;
    pub use crate::json_path::JsonPath;
    pub use crate::json_value::from_json;
    pub use crate::payload::parse_json;
    pub use crate::routing::{check_address, AddressCheck, RouteEntry, Router};
    pub use crate::sparkplug::compression::decode_with as sparkplug_decode_with;
    pub use crate::sparkplug::payload as sparkplug_payload;
    pub use crate::time_mask::{utc_ns, TimeMask, TimeZone};
}
