//! What the host knows of each edge node: whether it is born, the bdSeq of its birth, the next
//! seq it expects, the names, aliases and data types its births defined (its own and each
//! device's), and when it last asked the node for a rebirth.
//!
//! The rules, per node:
//! - NBIRTH starts over: bdSeq and metrics from the birth, seq from the birth's seq, every device
//!   unborn until its DBIRTH.
//! - NDATA, DBIRTH, DDATA and DDEATH must carry the next seq (0..255, wrapping). A gap, a message
//!   before the node's birth (or before a device's birth for DDATA) and an unknown alias leave
//!   the node out of step: its data is dropped until the next NBIRTH, and a rebirth is requested
//!   (at most once per debounce time).
//! - NDEATH with the bdSeq of the current birth ends the node and its devices; with another bdSeq
//!   it belongs to an older session and is ignored.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::datatype::DataType;
use super::payload::{Metric, MetricValue, Payload};

/// Most edge nodes the line keeps state for; messages of further nodes are dropped with a
/// warning, so that a broker inventing node ids cannot grow the line's memory without bound.
pub(crate) const MAX_NODES: usize = 65_536;

/// The metric name a birth carries its bdSeq in.
pub(crate) const BD_SEQ: &str = "bdSeq";

/// The metric of a node command that asks for a rebirth.
pub(crate) const REBIRTH: &str = "Node Control/Rebirth";

/// A metric as a birth defined it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MetricDef {
    pub name: String,
    pub datatype: DataType,
}

/// The metrics one birth defined, by name and by alias.
#[derive(Debug, Default)]
pub(crate) struct MetricTable {
    defs: Vec<MetricDef>,
    by_name: HashMap<String, usize>,
    by_alias: HashMap<u64, usize>,
    /// `by_alias` as a vector indexed by alias, when the birth numbered its aliases densely
    /// (0..n or 1..n, as edge nodes do): every data message resolves each metric by alias, and
    /// an index costs a fraction of a SipHash lookup. Empty otherwise.
    dense: Vec<Option<usize>>,
}

impl MetricTable {
    /// The table of a birth; metrics without a name cannot be defined and are left out.
    pub(crate) fn from_birth(metrics: &[Metric]) -> MetricTable {
        let mut table = MetricTable::default();
        for m in metrics {
            let Some(name) = &m.name else { continue };
            let def = MetricDef {
                name: name.clone(),
                datatype: DataType::from_code(m.datatype.unwrap_or(0)),
            };
            let k = table.defs.len();
            table.defs.push(def);
            table.by_name.insert(name.clone(), k);
            if let Some(alias) = m.alias {
                table.by_alias.insert(alias, k);
            }
        }
        let highest = table.by_alias.keys().copied().max();
        if let Some(highest) = highest.filter(|&h| h < 2 * table.defs.len() as u64 + 16) {
            table.dense = vec![None; highest as usize + 1];
            for (&alias, &k) in &table.by_alias {
                table.dense[alias as usize] = Some(k);
            }
        }
        table
    }

    /// The definition of a received metric: by its name when it has one, else by its alias.
    pub(crate) fn resolve(&self, m: &Metric) -> Option<&MetricDef> {
        let k = match (&m.name, m.alias) {
            (Some(name), _) => self.by_name.get(name.as_str()),
            (None, Some(alias)) => {
                match usize::try_from(alias).ok().and_then(|a| self.dense.get(a)) {
                    Some(slot) => slot.as_ref(),
                    None => self.by_alias.get(&alias),
                }
            }
            (None, None) => None,
        }?;
        self.defs.get(*k)
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&MetricDef> {
        self.by_name.get(name).and_then(|&k| self.defs.get(k))
    }
}

#[derive(Debug, Default)]
struct Device {
    born: bool,
    metrics: MetricTable,
}

/// Why a node's message is not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OutOfStep {
    #[error("no NBIRTH was received from the node yet")]
    NotBorn,
    #[error("no DBIRTH was received from device '{0}' yet")]
    DeviceNotBorn(String),
    #[error("seq {got} arrived where {expected} was expected")]
    Gap { expected: u8, got: u64 },
    #[error("the message has no seq")]
    NoSeq,
    #[error("the node lost its sequence earlier and has not been reborn since")]
    Waiting,
    #[error("metric alias {0} was not defined by the birth")]
    UnknownAlias(u64),
    #[error("metric '{0}' was not defined by the birth")]
    UnknownName(String),
    #[error("a payload could not be read")]
    Unreadable,
}

/// What an NDEATH means for the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Death {
    /// It ends the current session: the node and its devices are gone.
    Current,
    /// It belongs to another session (another bdSeq) and is ignored.
    Other {
        current: Option<u64>,
        got: Option<u64>,
    },
    /// The node was not born (or is already dead): nothing changes.
    NotBorn,
}

/// One edge node.
#[derive(Debug, Default)]
pub(crate) struct Node {
    born: bool,
    bd_seq: Option<u64>,
    next_seq: u8,
    /// Data is applied; false from a gap (or other loss) until the next NBIRTH.
    in_step: bool,
    metrics: MetricTable,
    devices: HashMap<String, Device>,
    last_rebirth_request: Option<Instant>,
}

impl Node {
    /// An NBIRTH: the node's new session.
    pub(crate) fn birth(&mut self, payload: &Payload) {
        self.born = true;
        self.in_step = true;
        self.bd_seq = bd_seq(payload);
        self.next_seq = next(payload.seq.unwrap_or(0));
        self.metrics = MetricTable::from_birth(&payload.metrics);
        self.devices.clear();
    }

    /// Checks the seq of an NDATA, DBIRTH, DDATA or DDEATH and advances it. An `Err` leaves the
    /// node out of step until its next birth.
    pub(crate) fn take_seq(&mut self, seq: Option<u64>) -> Result<(), OutOfStep> {
        let result = if !self.born {
            Err(OutOfStep::NotBorn)
        } else if !self.in_step {
            Err(OutOfStep::Waiting)
        } else {
            match seq {
                None => Err(OutOfStep::NoSeq),
                Some(got) if got != u64::from(self.next_seq) => Err(OutOfStep::Gap {
                    expected: self.next_seq,
                    got,
                }),
                Some(got) => {
                    self.next_seq = next(got);
                    Ok(())
                }
            }
        };
        if result.is_err() {
            self.in_step = false;
        }
        result
    }

    /// The data of a message is not usable (an unknown alias): the node is out of step.
    pub(crate) fn lose_step(&mut self) {
        self.in_step = false;
    }

    pub(crate) fn device_birth(&mut self, device: &str, payload: &Payload) {
        let d = self.devices.entry(device.to_string()).or_default();
        d.born = true;
        d.metrics = MetricTable::from_birth(&payload.metrics);
    }

    /// A DDEATH: the device is gone until its next DBIRTH.
    pub(crate) fn device_death(&mut self, device: &str) {
        if let Some(d) = self.devices.get_mut(device) {
            d.born = false;
        }
    }

    /// An NDEATH with `payload`'s bdSeq.
    pub(crate) fn death(&mut self, payload: &Payload) -> Death {
        if !self.born {
            return Death::NotBorn;
        }
        let got = bd_seq(payload);
        if got != self.bd_seq {
            return Death::Other {
                current: self.bd_seq,
                got,
            };
        }
        self.born = false;
        for d in self.devices.values_mut() {
            d.born = false;
        }
        Death::Current
    }

    /// The metrics the node's birth defined, or a device's; `Err` when that device is not born.
    pub(crate) fn metrics(&self, device: Option<&str>) -> Result<&MetricTable, OutOfStep> {
        match device {
            None => Ok(&self.metrics),
            Some(d) => match self.devices.get(d) {
                Some(dev) if dev.born => Ok(&dev.metrics),
                _ => Err(OutOfStep::DeviceNotBorn(d.to_string())),
            },
        }
    }

    /// The devices the node's session has seen born, alive or dead.
    pub(crate) fn devices(&self) -> impl Iterator<Item = &str> {
        self.devices.keys().map(String::as_str)
    }

    /// Whether a rebirth may be requested at `now`: not within `debounce` of the last request.
    /// A yes counts as the request.
    pub(crate) fn may_request_rebirth(&mut self, now: Instant, debounce: Duration) -> bool {
        let due = self
            .last_rebirth_request
            .is_none_or(|last| now.saturating_duration_since(last) >= debounce);
        if due {
            self.last_rebirth_request = Some(now);
        }
        due
    }
}

fn next(seq: u64) -> u8 {
    ((seq + 1) % 256) as u8
}

/// The bdSeq metric of a birth or death.
fn bd_seq(payload: &Payload) -> Option<u64> {
    payload
        .metrics
        .iter()
        .find(|m| m.name.as_deref() == Some(BD_SEQ))
        .and_then(|m| match m.value {
            Some(MetricValue::Long(v)) => Some(v),
            Some(MetricValue::Int(v)) => Some(u64::from(v)),
            _ => None,
        })
}

/// Every edge node the line has heard of, by group id, then node id.
#[derive(Debug, Default)]
pub(crate) struct Nodes {
    groups: HashMap<String, HashMap<String, Node>>,
    count: usize,
}

impl Nodes {
    /// The node's state, created on first sight; `None` when [`MAX_NODES`] are known already.
    /// A known node is found with the borrowed ids, without allocating.
    pub(crate) fn get_or_add(&mut self, group: &str, node: &str) -> Option<&mut Node> {
        let known = self.groups.get(group).is_some_and(|g| g.contains_key(node));
        if !known {
            if self.count >= MAX_NODES {
                return None;
            }
            self.count += 1;
            self.groups
                .entry(group.to_string())
                .or_default()
                .insert(node.to_string(), Node::default());
        }
        self.groups.get_mut(group)?.get_mut(node)
    }

    pub(crate) fn get(&self, group: &str, node: &str) -> Option<&Node> {
        self.groups.get(group)?.get(node)
    }

    /// Forgets every node (a new connection: births must come again).
    pub(crate) fn clear(&mut self) {
        self.groups.clear();
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: Option<&str>, alias: Option<u64>, datatype: u32, value: MetricValue) -> Metric {
        Metric {
            name: name.map(String::from),
            alias,
            datatype: Some(datatype),
            value: Some(value),
            ..Default::default()
        }
    }

    fn birth(seq: u64, bd: u64) -> Payload {
        Payload {
            seq: Some(seq),
            metrics: vec![
                metric(Some(BD_SEQ), None, 4, MetricValue::Long(bd)),
                metric(Some("Temp"), Some(1), 10, MetricValue::Double(20.0)),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn seq_runs_on_from_the_birth_and_wraps() {
        let mut n = Node::default();
        assert_eq!(n.take_seq(Some(0)), Err(OutOfStep::NotBorn));
        n.birth(&birth(254, 1));
        assert_eq!(n.take_seq(Some(255)), Ok(()));
        assert_eq!(n.take_seq(Some(0)), Ok(()));
        assert_eq!(n.take_seq(Some(1)), Ok(()));
        assert_eq!(
            n.take_seq(Some(3)),
            Err(OutOfStep::Gap {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(
            n.take_seq(Some(4)),
            Err(OutOfStep::Waiting),
            "out of step until reborn"
        );
        n.birth(&birth(0, 2));
        assert_eq!(n.take_seq(Some(1)), Ok(()));
        assert_eq!(n.take_seq(None), Err(OutOfStep::NoSeq));
    }

    /// Each row: the bdSeq of the birth, of the death, and what the death means.
    #[test]
    fn deaths_by_bd_seq() {
        let rows = [
            (Some(5), 5, Death::Current),
            (
                Some(5),
                4,
                Death::Other {
                    current: Some(5),
                    got: Some(4),
                },
            ),
            (None, 4, Death::NotBorn),
        ];
        for (born, died, want) in rows {
            let mut n = Node::default();
            if let Some(bd) = born {
                n.birth(&birth(0, bd));
                n.device_birth("plc", &birth(1, bd));
            }
            let death = Payload {
                metrics: vec![metric(Some(BD_SEQ), None, 4, MetricValue::Long(died))],
                ..Default::default()
            };
            assert_eq!(n.death(&death), want, "{born:?} {died}");
            let device_alive = n.metrics(Some("plc")).is_ok();
            assert_eq!(device_alive, matches!(want, Death::Other { .. }));
        }
    }

    #[test]
    fn metrics_by_name_or_alias_and_per_device() {
        let mut n = Node::default();
        n.birth(&birth(0, 1));
        let table = n.metrics(None).unwrap();
        let by_alias = metric(None, Some(1), 0, MetricValue::Double(1.0));
        assert_eq!(table.resolve(&by_alias).unwrap().name, "Temp");
        assert_eq!(table.resolve(&by_alias).unwrap().datatype, DataType::Double);
        assert!(table
            .resolve(&metric(None, Some(9), 0, MetricValue::Int(1)))
            .is_none());
        assert!(table.by_name("Temp").is_some());
        assert_eq!(
            n.metrics(Some("plc")).unwrap_err(),
            OutOfStep::DeviceNotBorn("plc".into())
        );
        n.device_birth("plc", &birth(1, 0));
        assert!(n.metrics(Some("plc")).is_ok());
        n.device_death("plc");
        assert!(n.metrics(Some("plc")).is_err());
    }

    #[test]
    fn rebirth_requests_are_debounced_on_virtual_time() {
        let t0 = Instant::now();
        let debounce = Duration::from_secs(5);
        let mut n = Node::default();
        assert!(n.may_request_rebirth(t0, debounce));
        assert!(!n.may_request_rebirth(t0 + Duration::from_secs(4), debounce));
        assert!(n.may_request_rebirth(t0 + Duration::from_secs(5), debounce));
        assert!(!n.may_request_rebirth(t0 + Duration::from_secs(9), debounce));
    }

    #[test]
    fn node_count_is_bounded() {
        let mut nodes = Nodes::default();
        for i in 0..MAX_NODES {
            assert!(nodes.get_or_add("g", &i.to_string()).is_some());
        }
        assert!(nodes.get_or_add("g", "one more").is_none());
        assert!(
            nodes.get_or_add("g", "0").is_some(),
            "known nodes stay reachable"
        );
    }
}
