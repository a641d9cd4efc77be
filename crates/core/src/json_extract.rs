//! Picks the values of a station's JSON addresses out of a payload in one pass, without building
//! the whole document: members and elements no address leads into are skipped (still checked for
//! syntax), and only the values addressed are built.
//!
//! The result is the same as parsing the document and calling [`JsonPath::find`] for each
//! address, duplicate keys included (the last one wins, subtree and all). A 1 KB LoRaWAN uplink
//! with eight addresses costs a fraction of building the document, whose every key and string is
//! an allocation.
//!
//! Each value found also keeps where its text is in the payload: a number read into a text tag
//! is its JSON text exactly (`1E3`, `12.50`, `12345678901234567890123`), which a built
//! `serde_json::Value` cannot give back without the `arbitrary_precision` feature (which would
//! change number handling for every crate of the workspace).

use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
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

/// The value at one address, and where its JSON text is in the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub value: Json,
    span: Range<usize>,
}

impl Found {
    /// The value's JSON text as written in `payload` (the one it was extracted from).
    pub fn text<'p>(&self, payload: &'p [u8]) -> &'p str {
        payload
            .get(self.span.clone())
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
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
    pub fn extract(&self, payload: &[u8], out: &mut Vec<Option<Found>>) -> Result<(), String> {
        out.clear();
        out.resize(self.slots, None);
        let mut de = serde_json::Deserializer::from_slice(payload);
        let result = NodeSeed {
            tree: self,
            node: 0,
            base: payload.as_ptr() as usize,
            inside: false,
            out,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        result.map_err(|e| crate::payload::json_error(&e))
    }
}

struct NodeSeed<'t, 'o> {
    tree: &'t PathTree,
    node: usize,
    /// The address of the payload's first byte: spans are counted from it.
    base: usize,
    /// The value of this node has been taken already; only deeper addresses are left.
    inside: bool,
    out: &'o mut [Option<Found>],
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let n = &self.tree.nodes[self.node];
        if n.here.is_empty() || self.inside {
            return d.deserialize_any(self);
        }
        // An address ends here: the value's text is taken as it is, then built.
        let raw = <&'de RawValue>::deserialize(d)?;
        let text = raw.get();
        let value = build(text).map_err(de::Error::custom)?;
        let start = (text.as_ptr() as usize).wrapping_sub(self.base);
        let found = Found {
            value,
            span: start..start + text.len(),
        };
        if let Some((&last, others)) = n.here.split_last() {
            for &s in others {
                self.out[s] = Some(found.clone());
            }
            self.out[last] = Some(found);
        }
        if n.keys.is_empty() && n.indexes.is_empty() {
            return Ok(());
        }
        // Deeper addresses are read from the same text, so their spans point into the payload.
        let mut inner = serde_json::Deserializer::from_str(text);
        NodeSeed {
            inside: true,
            ..self
        }
        .deserialize(&mut inner)
        .map_err(de::Error::custom)
    }
}

use serde::Deserialize as _;

/// Builds the value of a JSON text that the deserializer has just checked. Scalars, the common
/// case, take a short way instead of a second full parse.
fn build(text: &str) -> Result<Json, serde_json::Error> {
    match text.as_bytes().first() {
        // A checked string without escapes is its bytes between the quotes.
        Some(b'"') if !text.contains('\\') && text.len() >= 2 => {
            Ok(Json::String(text[1..text.len() - 1].to_string()))
        }
        Some(b'-' | b'0'..=b'9') => text.parse().map(Json::Number),
        _ => match text {
            "true" => Ok(Json::Bool(true)),
            "false" => Ok(Json::Bool(false)),
            "null" => Ok(Json::Null),
            _ => serde_json::from_str(text),
        },
    }
}

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
                        base: self.base,
                        inside: false,
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
                        base: self.base,
                        inside: false,
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
                    assert_eq!(
                        got.as_ref().map(|f| &f.value),
                        p.find(&full),
                        "{p} in {doc}"
                    );
                    if let Some(f) = got {
                        let again: Json = serde_json::from_str(f.text(doc.as_bytes())).unwrap();
                        assert_eq!(again, f.value, "{p} in {doc}: the text is the value's");
                    }
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
    fn values_keep_their_text_in_the_payload() {
        let doc =
            r#"{"a": 1E3 ,"b":[12.50, {"c":  12345678901234567890123}],"d":-0.0,"s":"\u00e9"}"#;
        // "b" and a path below it: the deeper one is read from the text of the shallower.
        let paths = ["a", "b[1]", "b[2].c", "b", "d", "s", "b[2]"];
        let parsed: Vec<JsonPath> = paths.iter().map(|p| JsonPath::parse(p).unwrap()).collect();
        let mut out = Vec::new();
        PathTree::new(&parsed)
            .extract(doc.as_bytes(), &mut out)
            .unwrap();
        let texts: Vec<&str> = out
            .iter()
            .map(|f| f.as_ref().map_or("", |f| f.text(doc.as_bytes())))
            .collect();
        assert_eq!(
            texts,
            [
                "1E3",
                "12.50",
                "12345678901234567890123",
                r#"[12.50, {"c":  12345678901234567890123}]"#,
                "-0.0",
                r#""\u00e9""#,
                r#"{"c":  12345678901234567890123}"#,
            ]
        );
    }

    #[test]
    fn errors_give_line_and_column() {
        let tree = PathTree::new(&[JsonPath::parse("a").unwrap()]);
        let mut out = Vec::new();
        let e = tree.extract(b"{\n\"a\": }", &mut out).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
