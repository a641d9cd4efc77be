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

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use super::datatype::DataType;
use super::metric_view::MetricView;
use super::payload::{Metric, MetricValue, Payload};
use super::reorder::{place, Held, Place, Reorder};
use crate::ids::TagIndex;

/// The maps of what brokers and edge nodes send (group, node and device ids, metric names and
/// aliases), looked up for every metric of every message: a hash keyed at random per map, as
/// std's, so that a publisher cannot craft collisions, but foldhash's, which costs a fraction of
/// SipHash on a 64-bit alias or a short name (some 650 instructions of an NDATA of 20 metrics).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

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
    /// an index costs a fraction of a hash lookup. Empty otherwise.
    dense: Vec<Option<usize>>,
    /// Per definition, the input tags that take it and the station they are of, found once by
    /// name: a node's data messages all go to one station, whose tags are fixed once the line
    /// started (`add_tag` refuses after `start`), so the name's hash lookup is not repeated for
    /// every metric of every message.
    wanted: Vec<OnceCell<(usize, Box<[TagIndex]>)>>,
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
        table.wanted = vec![OnceCell::new(); table.defs.len()];
        let highest = table.by_alias.keys().copied().max();
        if let Some(highest) = highest.filter(|&h| h < 2 * table.defs.len() as u64 + 16) {
            table.dense = vec![None; highest as usize + 1];
            for (&alias, &k) in &table.by_alias {
                table.dense[alias as usize] = Some(k);
            }
        }
        table
    }

    /// The input tags of `station` that take definition `def` (an index from
    /// [`MetricTable::resolve_index`]), looked up by `find` the first time; `find` again for
    /// another station than the first one asked for. Inlined: it is a few instructions per
    /// metric, and a call cost as much (left to itself, the compiler decides by where the
    /// crate's code happens to be cut into units).
    #[inline]
    pub(crate) fn tags_of<'a>(
        &'a self,
        def: usize,
        station: usize,
        find: impl Fn() -> Option<&'a [TagIndex]>,
    ) -> Option<&'a [TagIndex]> {
        let Some(cell) = self.wanted.get(def) else {
            return find();
        };
        let (first, tags) =
            cell.get_or_init(|| (station, find().map(Box::from).unwrap_or_default()));
        if *first == station {
            Some(tags)
        } else {
            find()
        }
    }

    /// The index of a received metric's definition ([`MetricTable::resolve`]).
    pub(crate) fn resolve_index(&self, m: &MetricView<'_>) -> Option<usize> {
        let k = match (m.name, m.alias) {
            (Some(name), _) => self.by_name.get(name),
            (None, Some(alias)) => {
                match usize::try_from(alias).ok().and_then(|a| self.dense.get(a)) {
                    Some(slot) => slot.as_ref(),
                    None => self.by_alias.get(&alias),
                }
            }
            (None, None) => None,
        }?;
        (*k < self.defs.len()).then_some(*k)
    }

    /// Definition `k`.
    pub(crate) fn def(&self, k: usize) -> Option<&MetricDef> {
        self.defs.get(k)
    }

    /// The definition of a received metric: by its name when it has one, else by its alias.
    #[cfg(test)]
    pub(crate) fn resolve(&self, m: &Metric) -> Option<&MetricDef> {
        self.def(self.resolve_index(&MetricView::from(m))?)
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&MetricDef> {
        self.by_name.get(name).and_then(|&k| self.defs.get(k))
    }
}

#[derive(Debug, Default)]
struct Device {
    born: bool,
    /// Its DDEATH (or its node's death) ended it; false again at its next DBIRTH.
    died: bool,
    metrics: MetricTable,
}

/// Why a node's message is not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OutOfStep {
    #[error("no NBIRTH was received from the node yet")]
    NotBorn,
    #[error("no DBIRTH was received from device '{0}' yet")]
    DeviceNotBorn(String),
    #[error("the node died (NDEATH) and has not sent a new NBIRTH since")]
    NodeDied,
    #[error("device '{0}' died (DDEATH or its node's NDEATH) and has not sent a new DBIRTH since")]
    DeviceDied(String),
    #[error("its NBIRTH has no seq (an NBIRTH must carry seq 0)")]
    BirthWithoutSeq,
    #[error("its NBIRTH has seq {0} (an NBIRTH must carry seq 0)")]
    BirthSeq(u64),
    #[error("its NBIRTH has no bdSeq metric")]
    BirthWithoutBdSeq,
    #[error("seq {expected} did not arrive within the reorder timeout of {timeout_ms} ms")]
    ReorderTimeout { expected: u8, timeout_ms: u128 },
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
    /// Its NDEATH ended it; false again at its next NBIRTH.
    died: bool,
    bd_seq: Option<u64>,
    next_seq: u8,
    /// Data is applied; false from a gap (or other loss) until the next NBIRTH.
    in_step: bool,
    metrics: MetricTable,
    devices: HashMap<String, Device>,
    last_rebirth_request: Option<Instant>,
    /// Messages that arrived ahead of their seq, and the Reorder Timeout of their gap.
    reorder: Reorder,
}

impl Node {
    /// An NBIRTH: the node's new session. A birth without seq 0 or without bdSeq is refused
    /// (`Err`): the node is left unborn and out of step, so that it is asked for a proper one
    /// rather than trusted with a session whose start cannot be checked.
    pub(crate) fn birth(&mut self, payload: &Payload) -> Result<(), OutOfStep> {
        self.devices.clear();
        self.reorder.clear();
        let checked = match (payload.seq, bd_seq(payload)) {
            (None, _) => Err(OutOfStep::BirthWithoutSeq),
            (Some(seq), _) if seq != 0 => Err(OutOfStep::BirthSeq(seq)),
            (Some(_), None) => Err(OutOfStep::BirthWithoutBdSeq),
            (Some(_), bd) => Ok(bd),
        };
        match checked {
            Ok(bd) => {
                self.born = true;
                self.died = false;
                self.in_step = true;
                self.bd_seq = bd;
                self.next_seq = 1;
                self.metrics = MetricTable::from_birth(&payload.metrics);
                Ok(())
            }
            Err(why) => {
                self.born = false;
                self.in_step = false;
                self.metrics = MetricTable::default();
                Err(why)
            }
        }
    }

    /// Checks the seq of an NDATA, DBIRTH, DDATA or DDEATH and advances it. An `Err` leaves the
    /// node out of step until its next birth.
    #[cfg(test)]
    pub(crate) fn take_seq(&mut self, seq: Option<u64>) -> Result<(), OutOfStep> {
        self.sequence(seq, false).map(|_| ())
    }

    /// [`Node::take_seq`], but with `reorder` a seq ahead of the next one is `Ok(Place::Ahead)`:
    /// the caller holds the message ([`Node::hold`]) until its turn comes.
    pub(crate) fn sequence(&mut self, seq: Option<u64>, reorder: bool) -> Result<Place, OutOfStep> {
        let result = if !self.born {
            Err(OutOfStep::NotBorn)
        } else if !self.in_step {
            Err(OutOfStep::Waiting)
        } else {
            match seq {
                None => Err(OutOfStep::NoSeq),
                Some(got) => match place(self.next_seq, got) {
                    Place::Next => {
                        self.next_seq = next(got);
                        Ok(Place::Next)
                    }
                    Place::Ahead if reorder => Ok(Place::Ahead),
                    _ => Err(OutOfStep::Gap {
                        expected: self.next_seq,
                        got,
                    }),
                },
            }
        };
        if result.is_err() {
            self.lose_step();
        }
        result
    }

    /// Holds a message that arrived ahead of its seq, starting the Reorder Timeout if no gap
    /// was open. `Err` (a repeat, or too much held) leaves the node out of step.
    pub(crate) fn hold(
        &mut self,
        message: Held,
        now: Instant,
        timeout: Duration,
    ) -> Result<(), OutOfStep> {
        self.reorder.hold(message, now, timeout).map_err(|m| {
            let why = OutOfStep::Gap {
                expected: self.next_seq,
                got: u64::from(m.seq),
            };
            self.lose_step();
            why
        })
    }

    /// The held message whose turn has come, its seq taken; none while the node is out of step.
    pub(crate) fn next_held(&mut self) -> Option<Held> {
        if !self.in_step {
            return None;
        }
        let held = self.reorder.take(self.next_seq)?;
        self.next_seq = next(u64::from(held.seq));
        Some(held)
    }

    /// Held messages were applied at `now`: the gap that started the timer is filled.
    pub(crate) fn gap_filled(&mut self, now: Instant) {
        self.reorder.gap_filled(now);
    }

    /// When the Reorder Timeout of the node's open gap runs out, if one is open.
    pub(crate) fn reorder_deadline(&self) -> Option<Instant> {
        self.reorder.deadline()
    }

    /// The Reorder Timeout ran out at `now` with the gap open: the node is out of step (why).
    pub(crate) fn reorder_expired(&mut self, now: Instant) -> Option<OutOfStep> {
        if !self.reorder.expired(now) {
            return None;
        }
        let why = OutOfStep::ReorderTimeout {
            expected: self.next_seq,
            timeout_ms: self.reorder.timeout().as_millis(),
        };
        self.lose_step();
        Some(why)
    }

    /// The data of a message is not usable (an unknown alias): the node is out of step, and
    /// what it held is dropped.
    pub(crate) fn lose_step(&mut self) {
        self.in_step = false;
        self.reorder.clear();
    }

    pub(crate) fn device_birth(&mut self, device: &str, payload: &Payload) {
        let d = self.devices.entry(device.to_string()).or_default();
        d.born = true;
        d.died = false;
        d.metrics = MetricTable::from_birth(&payload.metrics);
    }

    /// A DDEATH: the device is gone until its next DBIRTH.
    pub(crate) fn device_death(&mut self, device: &str) {
        if let Some(d) = self.devices.get_mut(device) {
            d.born = false;
            d.died = true;
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
        self.died = true;
        self.reorder.clear();
        for d in self.devices.values_mut() {
            d.born = false;
            d.died = true;
        }
        Death::Current
    }

    /// The metrics the node's birth defined, or a device's; `Err` when the node or that device
    /// is not born, saying whether it died or was never born.
    pub(crate) fn metrics(&self, device: Option<&str>) -> Result<&MetricTable, OutOfStep> {
        if !self.born {
            return Err(if self.died {
                OutOfStep::NodeDied
            } else {
                OutOfStep::NotBorn
            });
        }
        match device {
            None => Ok(&self.metrics),
            Some(d) => match self.devices.get(d) {
                Some(dev) if dev.born => Ok(&dev.metrics),
                Some(dev) if dev.died => Err(OutOfStep::DeviceDied(d.to_string())),
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

    pub(crate) fn get_mut(&mut self, group: &str, node: &str) -> Option<&mut Node> {
        self.groups.get_mut(group)?.get_mut(node)
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
        n.birth(&birth(0, 1)).unwrap();
        for seq in (1..=255).chain(0..=1) {
            assert_eq!(n.take_seq(Some(seq)), Ok(()), "{seq}");
        }
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
        n.birth(&birth(0, 2)).unwrap();
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
                n.birth(&birth(0, bd)).unwrap();
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
        n.birth(&birth(0, 1)).unwrap();
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
        assert_eq!(
            n.metrics(Some("plc")).unwrap_err(),
            OutOfStep::DeviceDied("plc".into())
        );
    }

    /// Each row: the NBIRTH's seq and bdSeq, and why it is refused (none: accepted).
    #[test]
    fn births_must_carry_seq_0_and_a_bd_seq() {
        let rows = [
            (Some(0), Some(3), None),
            (None, Some(3), Some(OutOfStep::BirthWithoutSeq)),
            (Some(1), Some(3), Some(OutOfStep::BirthSeq(1))),
            (Some(0), None, Some(OutOfStep::BirthWithoutBdSeq)),
        ];
        for (seq, bd, refused) in rows {
            let mut p = birth(0, bd.unwrap_or(0));
            p.seq = seq;
            if bd.is_none() {
                p.metrics.retain(|m| m.name.as_deref() != Some(BD_SEQ));
            }
            let mut n = Node::default();
            assert_eq!(n.birth(&p).err(), refused, "{seq:?} {bd:?}");
            let born = n.metrics(None).is_ok();
            assert_eq!(born, refused.is_none(), "{seq:?} {bd:?}");
            if refused.is_some() {
                assert_eq!(n.take_seq(Some(1)), Err(OutOfStep::NotBorn));
            }
        }
    }

    #[test]
    fn a_dead_node_says_it_died() {
        let mut n = Node::default();
        assert_eq!(n.metrics(None).unwrap_err(), OutOfStep::NotBorn);
        n.birth(&birth(0, 4)).unwrap();
        n.device_birth("plc", &birth(1, 4));
        let death = Payload {
            metrics: vec![metric(Some(BD_SEQ), None, 4, MetricValue::Long(4))],
            ..Default::default()
        };
        assert_eq!(n.death(&death), Death::Current);
        assert_eq!(n.metrics(None).unwrap_err(), OutOfStep::NodeDied);
        assert_eq!(n.metrics(Some("plc")).unwrap_err(), OutOfStep::NodeDied);
        n.birth(&birth(0, 5)).unwrap();
        assert!(n.metrics(None).is_ok());
        assert_eq!(
            n.metrics(Some("plc")).unwrap_err(),
            OutOfStep::DeviceNotBorn("plc".into()),
            "a new session: the device's birth is still to come"
        );
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
