//! Store-and-forward: the writes of output tags kept while the edge node cannot publish (not
//! connected, or its primary host offline), in their order, within `store_max_messages`; and
//! their file form for `store_path`, which the shell keeps (the core does no IO).
//!
//! The file is a sequence of length-delimited Sparkplug payloads, one per stored write: the
//! device in `uuid` (none for the node), one metric with its name, data type, time and value.
//! New writes are appended; once writes were forwarded or dropped the shell rewrites it whole.

use std::collections::VecDeque;

use prost::Message;

use super::edge_node::MetricRef;
use super::payload::{Metric, MetricValue, Payload};

/// One stored write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredWrite {
    pub metric: MetricRef,
    pub value: MetricValue,
    pub time_ms: u64,
}

/// What the shell does to the store file now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreFile {
    /// Append these bytes.
    Append(Vec<u8>),
    /// Replace the whole file by these bytes (empty: nothing is stored).
    Rewrite(Vec<u8>),
}

/// The stored writes, oldest first, and their counters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Store {
    entries: VecDeque<StoredWrite>,
    max: usize,
    pub stored: u64,
    pub forwarded: u64,
    pub dropped: u64,
    /// The first drop was warned about (once per store, which lives as long as the line).
    pub warned: bool,
    /// With a file: bytes to append since the shell last took them.
    appended: Vec<u8>,
    /// With a file: entries left the store, so the file is rewritten.
    rewrite: bool,
    /// Writes dropped since the file was last rewritten; the file is rewritten once they are
    /// half the bound, so it holds at most one and a half times the bound.
    dropped_since_rewrite: usize,
    persistent: bool,
}

impl Store {
    pub(crate) fn new(max: usize, persistent: bool) -> Store {
        Store {
            entries: VecDeque::new(),
            max: max.max(1),
            stored: 0,
            forwarded: 0,
            dropped: 0,
            warned: false,
            appended: Vec::new(),
            rewrite: false,
            dropped_since_rewrite: 0,
            persistent,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Stores a write (`record`: its file form, with a file); returns true when the oldest one
    /// was dropped to make room.
    pub(crate) fn push(&mut self, w: StoredWrite, record: impl FnOnce() -> Vec<u8>) -> bool {
        self.stored += 1;
        if self.persistent {
            self.appended.extend(record());
        }
        self.entries.push_back(w);
        if self.entries.len() <= self.max {
            return false;
        }
        self.entries.pop_front();
        self.dropped += 1;
        self.dropped_since_rewrite += 1;
        if self.persistent && self.dropped_since_rewrite * 2 >= self.max {
            self.rewrite = true;
        }
        true
    }

    /// A write read back from the file at start: stored, not appended again.
    pub(crate) fn restore(&mut self, w: StoredWrite) {
        self.entries.push_back(w);
        if self.entries.len() > self.max {
            self.entries.pop_front();
            self.dropped += 1;
            self.rewrite = true;
        }
    }

    /// A forwarded write reached the broker: it leaves the file too.
    pub(crate) fn forwarded_one(&mut self) {
        self.forwarded += 1;
        self.rewrite |= self.persistent;
    }

    /// The file must be written whole (entries that could not be read back are gone).
    pub(crate) fn rewrite_file(&mut self) {
        self.rewrite |= self.persistent;
    }

    /// Takes the oldest write `ready` accepts (the others stay, in order).
    pub(crate) fn take_first(
        &mut self,
        mut ready: impl FnMut(&StoredWrite) -> bool,
    ) -> Option<StoredWrite> {
        let i = self.entries.iter().position(&mut ready)?;
        self.entries.remove(i)
    }

    /// Writes that were forwarded but did not reach the broker go back in front, in order.
    pub(crate) fn put_back(&mut self, mut ws: Vec<StoredWrite>) {
        while let Some(w) = ws.pop() {
            self.entries.push_front(w);
        }
    }

    /// What the shell does to the file now (`record` gives an entry's file form), if anything.
    pub(crate) fn take_file(
        &mut self,
        record: impl Fn(&StoredWrite) -> Vec<u8>,
    ) -> Option<StoreFile> {
        if !self.persistent {
            return None;
        }
        if self.rewrite {
            self.rewrite = false;
            self.appended.clear();
            self.dropped_since_rewrite = 0;
            return Some(StoreFile::Rewrite(
                self.entries.iter().flat_map(record).collect(),
            ));
        }
        (!self.appended.is_empty()).then(|| StoreFile::Append(std::mem::take(&mut self.appended)))
    }
}

/// One stored write as the file holds it.
pub(crate) fn record(device: Option<&str>, metric: Metric) -> Vec<u8> {
    Payload {
        uuid: device.map(String::from),
        metrics: vec![metric],
        ..Default::default()
    }
    .encode_length_delimited_to_vec()
}

/// The records of a store file, in order: (device, metric). A damaged end (a record cut short
/// when the process died while appending) ends the reading; `Err` says how many bytes were left.
pub(crate) fn read_records(mut bytes: &[u8]) -> (Vec<(Option<String>, Metric)>, Option<usize>) {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Ok(p) = Payload::decode_length_delimited(&mut bytes) else {
            return (out, Some(bytes.len()));
        };
        if let Some(m) = p.metrics.into_iter().next() {
            out.push((p.uuid, m));
        }
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparkplug::edge_node::Owner;

    fn w(n: u64) -> StoredWrite {
        StoredWrite {
            metric: (Owner::Node, 0),
            value: MetricValue::Long(n),
            time_ms: n,
        }
    }

    #[test]
    fn bounded_in_order_oldest_dropped() {
        let mut s = Store::new(3, false);
        for n in 1..=5 {
            let dropped = s.push(w(n), Vec::new);
            assert_eq!(dropped, n > 3, "{n}");
        }
        assert_eq!((s.stored, s.dropped, s.len()), (5, 2, 3));
        assert_eq!(s.take_first(|_| true), Some(w(3)));
        s.put_back(vec![w(3)]);
        let order: Vec<u64> = std::iter::from_fn(|| s.take_first(|_| true))
            .map(|x| x.time_ms)
            .collect();
        assert_eq!(order, [3, 4, 5]);
        assert_eq!(s.take_file(|_| Vec::new()), None, "no file");
    }

    #[test]
    fn file_appends_then_rewrites() {
        let metric = |n: u64| Metric {
            name: Some(format!("m{n}")),
            value: Some(MetricValue::Long(n)),
            ..Default::default()
        };
        let mut s = Store::new(10, true);
        s.push(w(1), || record(None, metric(1)));
        s.push(w(2), || record(Some("d"), metric(2)));
        let Some(StoreFile::Append(bytes)) = s.take_file(|_| Vec::new()) else {
            panic!()
        };
        let (records, damaged) = read_records(&bytes);
        assert_eq!(damaged, None);
        assert_eq!(records[1].0.as_deref(), Some("d"));
        assert_eq!(records[1].1.value, Some(MetricValue::Long(2)));
        let (cut, damaged) = read_records(&bytes[..bytes.len() - 1]);
        assert_eq!(
            (cut.len(), damaged.is_some()),
            (1, true),
            "a cut record ends reading"
        );
        assert_eq!(s.take_file(|_| Vec::new()), None, "nothing new");
        s.take_first(|_| true);
        s.forwarded_one();
        let left = s.take_file(|x| record(None, metric(x.time_ms)));
        let Some(StoreFile::Rewrite(bytes)) = left else {
            panic!("{left:?}")
        };
        assert_eq!(read_records(&bytes).0.len(), 1);
    }
}
