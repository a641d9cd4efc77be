//! A line driven as the shell drives it: packets in, events out, no network.
#![allow(dead_code)]

pub mod payloads;

use std::time::Instant;

use mqtt_line_core::mqtt::{
    conn_ack, sub_ack, ConnectReturnCode, Packet, Publish, QoS, SubscribeReasonCode,
};
use mqtt_line_core::{Event, LogLevel};
use mqtt_line_core::{Line, LineConfig, StationId, StationState, TagId, Value, ValueType};

pub struct Harness {
    pub line: Line,
    pub now: Instant,
}

impl Harness {
    pub fn new(params: &[(&str, &str)]) -> Harness {
        let mut all = vec![("host", "127.0.0.1")];
        all.extend_from_slice(params);
        Harness::with_params(&all)
    }

    /// A line with exactly `params` (the host included).
    pub fn with_params(params: &[(&str, &str)]) -> Harness {
        let (config, _) = LineConfig::from_params("line 'L'", params.iter().copied()).unwrap();
        let now = Instant::now();
        Harness {
            line: Line::new("L", config, now),
            now,
        }
    }

    pub fn station(&mut self, id: u64, address: &str) {
        self.line
            .add_station(StationId(id), &format!("s{id}"), address, [])
            .unwrap();
        let base = id * 10;
        for (i, (addr, ty)) in [
            ("IN_TOPIC", ValueType::TxtI),
            ("IN_DATA", ValueType::TxtI),
            ("IN_ID", ValueType::Ci),
        ]
        .into_iter()
        .enumerate()
        {
            self.line
                .add_tag(StationId(id), TagId(base + i as u64), addr, addr, ty, None)
                .unwrap();
        }
    }

    /// Gives station `id` an ACK_ID tag (tag 50).
    pub fn ack_id(&mut self, id: u64) {
        self.line
            .add_tag(
                StationId(id),
                TagId(50),
                "ack",
                "ACK_ID",
                ValueType::Co,
                None,
            )
            .unwrap();
    }

    /// A started, connected line with station 1 `cmd` holding OUT_TOPIC (tag 1, with
    /// `default_topic`) and OUT_VALUE (tag 2).
    pub fn writer(params: &[(&str, &str)], default_topic: Option<&str>) -> Harness {
        let mut h = Harness::writer_started(params, default_topic);
        h.connect();
        h.events();
        h
    }

    /// [`Harness::writer`]'s line, started but not connected (a test that connects its own way,
    /// e.g. both connections of a redundant line).
    #[allow(dead_code)] // not every test binary that shares this module uses it
    pub fn writer_started(params: &[(&str, &str)], default_topic: Option<&str>) -> Harness {
        let mut h = Harness::new(params);
        h.line.add_station(StationId(1), "cmd", "cmd", []).unwrap();
        let default = default_topic.map(|t| Value::Text(t.into()));
        h.line
            .add_tag(
                StationId(1),
                TagId(1),
                "topic",
                "OUT_TOPIC",
                ValueType::TxtO,
                default,
            )
            .unwrap();
        h.line
            .add_tag(
                StationId(1),
                TagId(2),
                "value",
                "OUT_VALUE",
                ValueType::TxtO,
                None,
            )
            .unwrap();
        h.line.start(0).unwrap();
        h
    }

    pub fn transmit(&mut self) -> Vec<Packet> {
        std::iter::from_fn(|| self.line.poll_transmit(self.now)).collect()
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.line.poll_event()).collect()
    }

    pub fn connect(&mut self) {
        self.connect_with_session(false)
    }

    pub fn connect_with_session(&mut self, session_present: bool) {
        self.connect_packets(session_present);
    }

    /// Connects as [`Harness::connect_with_session`] does; the packets the line sent on the way
    /// (CONNECT, SUBSCRIBE, ...).
    pub fn connect_packets(&mut self, session_present: bool) -> Vec<Packet> {
        self.line
            .transport_open("127.0.0.1:1883", &Default::default(), self.now);
        let mut sent = self.transmit();
        self.line
            .handle_packet(
                Packet::ConnAck(conn_ack(ConnectReturnCode::Success, session_present)),
                self.now,
                0,
            )
            .unwrap();
        sent.extend(self.transmit());
        let Some(Packet::Subscribe(sub)) = sent.last() else {
            panic!("{sent:?}")
        };
        let pkid = sub.pkid;
        self.line
            .handle_packet(
                Packet::SubAck(sub_ack(
                    pkid,
                    vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
                )),
                self.now,
                0,
            )
            .unwrap();
        sent
    }

    pub fn receive(&mut self, topic: &str, payload: &[u8], qos: QoS, pkid: u16) -> Vec<Event> {
        let mut p = Publish::new(topic, qos, payload.to_vec(), None);
        p.pkid = pkid;
        self.receive_publish(p)
    }

    pub fn receive_publish(&mut self, p: Publish) -> Vec<Event> {
        self.line
            .handle_packet(Packet::Publish(p), self.now, 42)
            .unwrap();
        self.events()
    }
}

/// A started, connected line with station 1 on topic `t` (input tags as [`Harness::station`]
/// plus ACK_ID, tag 50) and station 2 on `free` without a gate.
pub fn gated(params: &[(&str, &str)]) -> Harness {
    let mut h = Harness::new(params);
    h.station(1, "t");
    h.ack_id(1);
    h.station(2, "free");
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    h
}

pub fn values(events: &[Event]) -> Vec<(u64, Option<Value>, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::TagValue {
                tag, value, flags, ..
            } => Some((tag.0, value.clone(), *flags)),
            _ => None,
        })
        .collect()
}

pub fn states(events: &[Event]) -> Vec<(u64, StationState)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StationState { station, state, .. } => Some((station.0, *state)),
            _ => None,
        })
        .collect()
}

/// (request, error) of each finished write.
pub fn write_results(events: &[Event]) -> Vec<(u64, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::WriteDone { request, error, .. } => Some((*request, error.clone())),
            _ => None,
        })
        .collect()
}

/// (level, text) of each log line the line reported.
pub fn logs(events: &[Event]) -> Vec<(LogLevel, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Log { level, text } => Some((*level, text.clone())),
            _ => None,
        })
        .collect()
}
