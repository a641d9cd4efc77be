//! The host side of the mqtt-line C ABI, shared by sim-host and the benchmark: loading the
//! plugin and negotiating its function table ([`plugin`]), owned copies of its events
//! ([`event`]), the line's counters ([`stats`]) and the wake-up its notify callback triggers ([`wake`]).
//!
//! Only the C ABI is used, as a foreign SCADA kernel would, so what works here works for any
//! host that follows docs/abi.md.

pub mod event;
pub mod plugin;
pub mod stats;
pub mod text;
pub mod wake;
