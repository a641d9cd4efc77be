//! The edge node's own bookkeeping, without the line: its metrics and their aliases, `bdSeq` per
//! connection, `seq` per message, which births are out, and the payloads of its births, data
//! and deaths. `line/edge.rs` connects it to the line's stations, tags, session and events.

use std::collections::HashMap;

use super::datatype::DataType;
use super::node_state::REBIRTH;
use super::payload::{Metric, MetricValue, Payload};
use crate::ids::{StationIndex, TagIndex};
use crate::value::{ValueKind, ValueType};

/// The birth/death sequence metric of NBIRTH and NDEATH.
pub(crate) const BD_SEQ: &str = "bdSeq";
/// The command that sends the node to its next MQTT server.
pub(crate) const NEXT_SERVER: &str = "Node Control/Next Server";

/// Whose metric: the node's own, or a device's (by its index in [`EdgeNode::devices`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Owner {
    Node,
    Device(usize),
}

/// One metric the node publishes or takes commands for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EdgeMetric {
    pub name: Box<str>,
    pub alias: u64,
    pub datatype: DataType,
    /// The current value (the last write or command); `None`: births say `is_null`.
    pub value: Option<MetricValue>,
    /// When the value was written (Unix ms).
    pub time_ms: u64,
    /// The input tags a command for this metric goes to.
    pub inputs: Vec<TagIndex>,
}

impl EdgeMetric {
    /// The metric as births carry it at `now_ms`: name, alias, data type, time (of its value,
    /// else of the birth) and value (or null).
    fn birth(&self, now_ms: u64) -> Metric {
        Metric {
            name: Some(self.name.to_string()),
            alias: Some(self.alias),
            timestamp: Some(if self.time_ms == 0 {
                now_ms
            } else {
                self.time_ms
            }),
            datatype: Some(self.datatype.code()),
            is_null: self.value.is_none().then_some(true),
            value: self.value.clone(),
            ..Default::default()
        }
    }
}

/// A device of the node: one station `<group>/<node>/<device>`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Device {
    pub name: String,
    pub station: StationIndex,
    pub metrics: Vec<EdgeMetric>,
    /// Its DBIRTH is out in the current node birth (and no DDEATH since).
    pub born: bool,
}

/// Where a metric is: its owner and its index there.
pub(crate) type MetricRef = (Owner, usize);

/// An edge node: its identity, metrics, sequence numbers and births.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EdgeNode {
    pub group: String,
    pub node: String,
    pub station: StationIndex,
    pub metrics: Vec<EdgeMetric>,
    pub devices: Vec<Device>,
    /// Each metric by alias (aliases are unique across the node and its devices).
    by_alias: HashMap<u64, MetricRef>,
    /// The output tag that writes each metric.
    pub outputs: HashMap<TagIndex, MetricRef>,
    /// The bdSeq of the current connection's will and births.
    bd_seq: u8,
    /// The bdSeq the next connection gets.
    next_bd_seq: u8,
    /// The bdSeq just taken and not yet saved by the shell (see `Line::edge_files`).
    pub bd_seq_unsaved: bool,
    /// The seq of the node's next message.
    seq: u8,
    /// NBIRTH is out on the current connection (and no NDEATH since).
    pub born: bool,
    /// The node has sent NDEATH and DISCONNECT of its own and waits for the broker to close.
    pub leaving: bool,
    /// The primary host said online (always true when the node has none).
    pub host_online: bool,
    /// The newest STATE time stamp seen (ms); older STATE messages are ignored.
    pub host_state_ms: u64,
}

impl EdgeNode {
    pub(crate) fn new(group: &str, node: &str, station: StationIndex) -> EdgeNode {
        EdgeNode {
            group: group.to_string(),
            node: node.to_string(),
            station,
            metrics: Vec::new(),
            devices: Vec::new(),
            by_alias: HashMap::new(),
            outputs: HashMap::new(),
            bd_seq: 0,
            next_bd_seq: 0,
            bd_seq_unsaved: false,
            seq: 0,
            born: false,
            leaving: false,
            host_online: false,
            host_state_ms: 0,
        }
    }

    /// The device of `station`, added when new.
    pub(crate) fn device(&mut self, name: &str, station: StationIndex) -> usize {
        if let Some(d) = self.devices.iter().position(|d| d.station == station) {
            return d;
        }
        self.devices.push(Device {
            name: name.to_string(),
            station,
            metrics: Vec::new(),
            born: false,
        });
        self.devices.len() - 1
    }

    /// The metric `name` of `owner`, added with the next alias when new; `Err` names the data
    /// type it already has when `datatype` differs.
    pub(crate) fn metric(
        &mut self,
        owner: Owner,
        name: &str,
        datatype: DataType,
    ) -> Result<MetricRef, DataType> {
        let alias = self.by_alias.len() as u64 + 1;
        let list = self.list_mut(owner);
        if let Some(i) = list.iter().position(|m| &*m.name == name) {
            return match list[i].datatype {
                dt if dt == datatype => Ok((owner, i)),
                dt => Err(dt),
            };
        }
        list.push(EdgeMetric {
            name: name.into(),
            alias,
            datatype,
            value: None,
            time_ms: 0,
            inputs: Vec::new(),
        });
        let at = (owner, list.len() - 1);
        self.by_alias.insert(alias, at);
        Ok(at)
    }

    fn list_mut(&mut self, owner: Owner) -> &mut Vec<EdgeMetric> {
        match owner {
            Owner::Node => &mut self.metrics,
            Owner::Device(d) => &mut self.devices[d].metrics,
        }
    }

    pub(crate) fn get(&self, (owner, i): MetricRef) -> &EdgeMetric {
        match owner {
            Owner::Node => &self.metrics[i],
            Owner::Device(d) => &self.devices[d].metrics[i],
        }
    }

    pub(crate) fn get_mut(&mut self, (owner, i): MetricRef) -> &mut EdgeMetric {
        &mut self.list_mut(owner)[i]
    }

    /// A command's metric of `owner`: by name, else by alias.
    pub(crate) fn resolve(&self, owner: Owner, m: &Metric) -> Option<MetricRef> {
        let list = match owner {
            Owner::Node => &self.metrics,
            Owner::Device(d) => &self.devices[d].metrics,
        };
        if let Some(name) = &m.name {
            return list
                .iter()
                .position(|x| *x.name == **name)
                .map(|i| (owner, i));
        }
        let at = *self.by_alias.get(&m.alias?)?;
        (at.0 == owner).then_some(at)
    }

    /// The device named `name`.
    pub(crate) fn device_named(&self, name: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.name == name)
    }

    /// Where the bdSeq count starts: after the one saved by an earlier process, else from the
    /// clock (seconds), so that a restarted process does not reuse the bdSeq of the will an
    /// earlier one left with the broker.
    pub(crate) fn start_bd_seq(&mut self, saved: Option<u8>, wall_ns: i64) {
        self.next_bd_seq = match saved {
            Some(last) => last.wrapping_add(1),
            None => (wall_ns.div_euclid(1_000_000_000).rem_euclid(256)) as u8,
        };
    }

    /// A new connection: its bdSeq (0..255, wrapping), for the will and every birth on it.
    pub(crate) fn connect(&mut self) -> u8 {
        self.bd_seq = self.next_bd_seq;
        self.next_bd_seq = self.next_bd_seq.wrapping_add(1);
        self.bd_seq_unsaved = true;
        self.born = false;
        self.leaving = false;
        for d in &mut self.devices {
            d.born = false;
        }
        self.bd_seq
    }

    pub(crate) fn bd_seq(&self) -> u8 {
        self.bd_seq
    }

    /// The seq of the next message (0..255, wrapping).
    fn take_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        u64::from(seq)
    }

    /// NBIRTH at `now_ms`: seq starts at 0; bdSeq, the node controls, then every node metric.
    pub(crate) fn nbirth(&mut self, now_ms: u64) -> Payload {
        self.seq = 0;
        self.born = true;
        for d in &mut self.devices {
            d.born = false;
        }
        let control = |name: &str| Metric {
            name: Some(name.to_string()),
            timestamp: Some(now_ms),
            datatype: Some(DataType::Boolean.code()),
            value: Some(MetricValue::Boolean(false)),
            ..Default::default()
        };
        let mut metrics = vec![
            bd_seq_metric(self.bd_seq, now_ms),
            control(REBIRTH),
            control(NEXT_SERVER),
        ];
        metrics.extend(self.metrics.iter().map(|m| m.birth(now_ms)));
        Payload {
            timestamp: Some(now_ms),
            metrics,
            seq: Some(self.take_seq()),
            ..Default::default()
        }
    }

    /// DBIRTH of device `d`: every metric of the device.
    pub(crate) fn dbirth(&mut self, d: usize, now_ms: u64) -> Payload {
        self.devices[d].born = true;
        let metrics = self.devices[d]
            .metrics
            .iter()
            .map(|m| m.birth(now_ms))
            .collect();
        Payload {
            timestamp: Some(now_ms),
            metrics,
            seq: Some(self.take_seq()),
            ..Default::default()
        }
    }

    /// DDEATH of device `d`.
    pub(crate) fn ddeath(&mut self, d: usize, now_ms: u64) -> Payload {
        self.devices[d].born = false;
        Payload {
            timestamp: Some(now_ms),
            seq: Some(self.take_seq()),
            ..Default::default()
        }
    }

    /// NDATA or DDATA of one metric by alias: its value at `time_ms`, historical when it was
    /// stored while the node could not publish. No data type: the birth gave it, and Sparkplug
    /// 3.0 asks data messages to leave it out.
    pub(crate) fn data(
        &mut self,
        at: MetricRef,
        value: MetricValue,
        time_ms: u64,
        historical: bool,
        now_ms: u64,
    ) -> Payload {
        let m = self.get(at);
        let metric = Metric {
            alias: Some(m.alias),
            timestamp: Some(time_ms),
            is_historical: historical.then_some(true),
            value: Some(value),
            ..Default::default()
        };
        Payload {
            timestamp: Some(now_ms),
            metrics: vec![metric],
            seq: Some(self.take_seq()),
            ..Default::default()
        }
    }

    /// NDEATH (the will, and what the node publishes before it leaves): bdSeq only, no seq.
    pub(crate) fn ndeath(&mut self, now_ms: Option<u64>) -> Payload {
        self.born = false;
        Payload {
            timestamp: now_ms,
            metrics: vec![bd_seq_metric(self.bd_seq, now_ms.unwrap_or(0))],
            ..Default::default()
        }
    }
}

fn bd_seq_metric(bd_seq: u8, now_ms: u64) -> Metric {
    Metric {
        name: Some(BD_SEQ.to_string()),
        timestamp: (now_ms > 0).then_some(now_ms),
        datatype: Some(DataType::Int64.code()),
        value: Some(MetricValue::Long(u64::from(bd_seq))),
        ..Default::default()
    }
}

/// Whether a command's value sits in the field its data type travels in (a String value for a
/// Boolean metric is a malformed command, not a text to read a boolean from).
pub(crate) fn value_fits(dt: DataType, v: &MetricValue) -> bool {
    use DataType::*;
    match v {
        MetricValue::Int(_) => matches!(dt, Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32),
        MetricValue::Long(_) => matches!(dt, Int64 | UInt64 | UInt32 | DateTime),
        MetricValue::Float(_) => dt == Float,
        MetricValue::Double(_) => dt == Double,
        MetricValue::Boolean(_) => dt == Boolean,
        MetricValue::String(_) => matches!(dt, String | Text | Uuid),
        _ => false,
    }
}

/// The data type of a metric of tag type `ty` when the address names none: Ao/Ai Double,
/// Co/Ci Int64, Do/Di Boolean, TxtO/TxtI String, time tags DateTime.
pub(crate) fn default_datatype(ty: ValueType) -> DataType {
    match ty.kind() {
        ValueKind::Float | ValueKind::RelTime => DataType::Double,
        ValueKind::Int | ValueKind::Quad => DataType::Int64,
        ValueKind::Bool => DataType::Boolean,
        ValueKind::Text => DataType::String,
        ValueKind::AbsTime => DataType::DateTime,
    }
}

/// The data types an address may name (`SPB=<name>;type=<DataType>`), by their names in the
/// specification.
const NAMED: [DataType; 15] = [
    DataType::Int8,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::UInt8,
    DataType::UInt16,
    DataType::UInt32,
    DataType::UInt64,
    DataType::Float,
    DataType::Double,
    DataType::Boolean,
    DataType::String,
    DataType::DateTime,
    DataType::Text,
    DataType::Uuid,
];

/// Splits an edge node's SPB= name into the metric name and the data type it names
/// (`Motor/Speed;type=Int32`); `Err` says why the named type is not usable for a tag of `ty`.
pub(crate) fn metric_address(text: &str, ty: ValueType) -> Result<(&str, DataType), String> {
    let Some((name, spec)) = text.rsplit_once(";type=") else {
        return Ok((text, default_datatype(ty)));
    };
    let spec = spec.trim();
    let dt = NAMED
        .into_iter()
        .find(|dt| dt.to_string().eq_ignore_ascii_case(spec))
        .ok_or_else(|| {
            format!(
                "'{}' is not a Sparkplug data type (Int8..Int64, UInt8..UInt64, Float, Double, \
                 Boolean, String, DateTime, Text, UUID)",
                crate::text::shorten(spec)
            )
        })?;
    let integer = matches!(
        dt,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    );
    let fits = match ty.kind() {
        ValueKind::Int | ValueKind::Quad => {
            integer || matches!(dt, DataType::Float | DataType::Double)
        }
        ValueKind::Float | ValueKind::RelTime => {
            integer || matches!(dt, DataType::Float | DataType::Double)
        }
        ValueKind::Bool => dt == DataType::Boolean || integer,
        ValueKind::Text => matches!(dt, DataType::String | DataType::Text | DataType::Uuid),
        ValueKind::AbsTime => dt == DataType::DateTime,
    };
    if !fits {
        return Err(format!("data type {dt} does not fit a {} tag", ty.name()));
    }
    if name.is_empty() {
        return Err("the metric name before ';type=' is empty".into());
    }
    Ok((name, dt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_addresses() {
        use ValueType::*;
        type Row<'a> = (&'a str, ValueType, Result<(&'a str, DataType), &'a str>);
        let rows: [Row; 10] = [
            ("Speed", Ao, Ok(("Speed", DataType::Double))),
            ("Speed", Co, Ok(("Speed", DataType::Int64))),
            ("Run", Do, Ok(("Run", DataType::Boolean))),
            ("Name", TxtO, Ok(("Name", DataType::String))),
            (
                "Motor/Speed;type=Int32",
                Co,
                Ok(("Motor/Speed", DataType::Int32)),
            ),
            ("Level;type=float", Ai, Ok(("Level", DataType::Float))),
            ("Id;type=UUID", TxtI, Ok(("Id", DataType::Uuid))),
            ("X;type=Int128", Co, Err("not a Sparkplug data type")),
            ("X;type=String", Co, Err("does not fit a Co tag")),
            (";type=Int8", Co, Err("empty")),
        ];
        for (text, ty, want) in rows {
            match (metric_address(text, ty), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(e), Err(want)) => assert!(e.contains(want), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?}, want {want:?}"),
            }
        }
    }

    /// seq wraps after 255 and starts at 0 with each NBIRTH; bdSeq goes up once per connection.
    #[test]
    fn sequence_and_birth_bookkeeping() {
        let mut n = EdgeNode::new("g", "n", StationIndex(0));
        let d = n.device("d", StationIndex(1));
        n.metric(Owner::Node, "a", DataType::Double).unwrap();
        let dm = n.metric(Owner::Device(d), "b", DataType::Int64).unwrap();
        assert_eq!(
            n.metric(Owner::Device(d), "b", DataType::Int32),
            Err(DataType::Int64)
        );
        n.start_bd_seq(Some(255), 0);
        assert_eq!(n.connect(), 0, "255 wraps to 0");
        assert_eq!(n.connect(), 1);
        let birth = n.nbirth(5);
        assert_eq!(birth.seq, Some(0));
        assert_eq!(birth.metrics[0].value, Some(MetricValue::Long(1)));
        assert_eq!(birth.metrics[3].is_null, Some(true));
        assert_eq!(n.dbirth(d, 5).seq, Some(1));
        let mut last = 1;
        for _ in 0..300 {
            let seq = n.data(dm, MetricValue::Long(1), 1, false, 5).seq.unwrap();
            assert_eq!(seq, (last + 1) % 256);
            last = seq;
        }
        assert_eq!(n.nbirth(6).seq, Some(0), "a rebirth starts seq over");
        assert!(!n.devices[d].born, "a rebirth asks for the DBIRTHs again");
        n.start_bd_seq(None, 1_000_000_000 * 300);
        assert_eq!(n.connect(), 44, "300 s % 256");
    }
}
