//! Picks the values of a station's JSON addresses out of a payload in one pass, without building
//! the whole document: members and elements no address leads into are skipped (still checked for
//! syntax), and only the values addressed are built.
//!
//! The result is the same as parsing the document and calling [`JsonPath::find`] for each
//! address, duplicate keys included (the last one wins, subtree and all). A 1 KB LoRaWAN uplink
//! with eight addresses costs a fraction of building the document, whose every key and string is
//! an allocation.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

use crate::json_path::{JsonPath, Step};

/// The addresses of one station as a tree of steps; slot `i` is the `i`-th address.
#[derive(Debug, Default, Clone)]
pub struct PathTree {
    nodes: Vec<Node>,
    slots: usize,
}

#[derive(Debug, Default, Clone)]
struct Node {
    keys: Vec<(Box<str>, usize)>,
    indexes: Vec<(usize, usize)>,
    /// Addresses that end here.
    here: Vec<usize>,
    /// Every address that ends here or below: cleared when the member is met again.
    below: Vec<usize>,
}

impl PathTree {
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a JsonPath>) -> PathTree {
        let mut t = PathTree {
            nodes: vec![Node::default()],
            slots: 0,
        };
        for (slot, path) in paths.into_iter().enumerate() {
            t.slots = slot + 1;
            let mut n = 0;
            t.nodes[0].below.push(slot);
            for step in path.steps() {
                let found = match step {
                    Step::Key(k) => t.nodes[n]
                        .keys
                        .iter()
                        .find(|(key, _)| **key == **k)
                        .map(|(_, c)| *c),
                    Step::Index(i) => t.nodes[n]
                        .indexes
                        .iter()
                        .find(|(j, _)| j == i)
                        .map(|(_, c)| *c),
                };
                let child = match found {
                    Some(c) => c,
                    None => {
                        t.nodes.push(Node::default());
                        let c = t.nodes.len() - 1;
                        match step {
                            Step::Key(k) => t.nodes[n].keys.push((k.as_str().into(), c)),
                            Step::Index(i) => t.nodes[n].indexes.push((*i, c)),
                        }
                        c
                    }
                };
                n = child;
                t.nodes[n].below.push(slot);
            }
            t.nodes[n].here.push(slot);
        }
        t
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.slots
    }

    pub fn is_empty(&self) -> bool {
        self.slots == 0
    }

    /// Fills `out` (resized to [`len`](Self::len)) with the value of each address, `None` where
    /// the payload has none. A payload that is not JSON is an error, with its line and column.
    pub fn extract(&self, payload: &[u8], out: &mut Vec<Option<Json>>) -> Result<(), String> {
        out.clear();
        out.resize(self.slots, None);
        let mut de = serde_json::Deserializer::from_slice(payload);
        let result = NodeSeed {
            tree: self,
            node: 0,
            out,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        result.map_err(|e| crate::payload::json_error(&e))
    }

    /// Resolves the addresses below `node` in an already built value.
    fn fill_from(&self, node: usize, v: &Json, out: &mut [Option<Json>]) {
        let n = &self.nodes[node];
        for &s in &n.here {
            out[s] = Some(v.clone());
        }
        match v {
            Json::Object(m) => {
                for (k, c) in &n.keys {
                    if let Some(child) = m.get(&**k) {
                        self.fill_from(*c, child, out);
                    }
                }
            }
            Json::Array(a) => {
                for (i, c) in &n.indexes {
                    if let Some(child) = a.get(*i) {
                        self.fill_from(*c, child, out);
                    }
                }
            }
            _ => {}
        }
    }
}

struct NodeSeed<'t, 'o> {
    tree: &'t PathTree,
    node: usize,
    out: &'o mut [Option<Json>],
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let n = &self.tree.nodes[self.node];
        if !n.here.is_empty() {
            // An address ends here: this value is built, and deeper addresses read from it.
            let v = Json::deserialize(d)?;
            self.tree.fill_from(self.node, &v, self.out);
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

use serde::Deserialize as _;

/// Looks a member name up among a node's keys without allocating (escaped names excepted).
struct KeySeed<'t> {
    node: &'t Node,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<usize>, E> {
        Ok(self
            .node
            .keys
            .iter()
            .find(|(k, _)| **k == *s)
            .map(|(_, c)| *c))
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let n = &self.tree.nodes[self.node];
        while let Some(key) = map.next_key_seed(KeySeed { node: n })? {
            match key {
                Some(child) => {
                    // A repeated member replaces the earlier one entirely.
                    for &s in &self.tree.nodes[child].below {
                        self.out[s] = None;
                    }
                    map.next_value_seed(NodeSeed {
                        tree: self.tree,
                        node: child,
                        out: &mut *self.out,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let n = &self.tree.nodes[self.node];
        let mut i = 0usize;
        loop {
            let child = n.indexes.iter().find(|(j, _)| *j == i).map(|(_, c)| *c);
            let more = match child {
                Some(c) => seq
                    .next_element_seed(NodeSeed {
                        tree: self.tree,
                        node: c,
                        out: &mut *self.out,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    // Scalars where an object or array was addressed: the addresses below find nothing.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(doc: &str, paths: &[&str]) {
        let parsed: Vec<JsonPath> = paths.iter().map(|p| JsonPath::parse(p).unwrap()).collect();
        let tree = PathTree::new(&parsed);
        let mut out = Vec::new();
        let full: Result<Json, _> = serde_json::from_str(doc);
        match (tree.extract(doc.as_bytes(), &mut out), full) {
            (Ok(()), Ok(full)) => {
                for (p, got) in parsed.iter().zip(&out) {
                    assert_eq!(got.as_ref(), p.find(&full), "{p} in {doc}");
                }
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{doc}: extract {a:?}, parse {b:?}"),
        }
    }

    #[test]
    fn same_values_as_the_whole_document() {
        let paths = [
            "a", "a.b", "a.b.c", "l[1]", "l[3].x", "l[2][1]", "s", "n", "missing", "a.x",
            "\"q.k\"", "e",
        ];
        for doc in [
            r#"{"a":{"b":{"c":1,"d":[1,2]}},"l":[10,[20,21],{"x":"y"}],"s":"t","n":null}"#,
            r#"{"a":1,"l":"x","s":{"t":1}}"#,
            r#"{"a":{"b":1},"a":{"x":2}}"#,
            r#"{"a":{"b":{"c":1}},"a":{"b":2}}"#,
            r#"{"q.k":[1],"e":"\u00e9\"","a":[{"b":1}]}"#,
            r#"[1,2,3]"#,
            r#"{"a": 1,}"#,
            r#"{"a": tru}"#,
            r#"{"a": 1} x"#,
            r#""#,
            r#"  {"l":[1,2,3,4,5,6],"a":{"b":{"c":[]}}}  "#,
        ] {
            check(doc, &paths);
        }
    }

    #[test]
    fn errors_give_line_and_column() {
        let tree = PathTree::new(&[JsonPath::parse("a").unwrap()]);
        let mut out = Vec::new();
        let e = tree.extract(b"{\n\"a\": }", &mut out).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
