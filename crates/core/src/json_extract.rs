//! Picks the values of a station's JSON addresses out of a payload in one pass, without building
//! the whole document: members and elements no address leads into are skipped (still checked for
//! syntax), and only the values addressed are built.
//!
//! The result is the same as parsing the document and calling [`JsonPath::find`] for each
//! address, duplicate keys included (the last one wins, subtree and all). A 1 KB LoRaWAN uplink
//! with eight addresses costs a fraction of building the document, whose every key and string is
//! an allocation.
//!
//! An array whose elements are selected by a member's value (`values[id="T1"].v`, Kepware's
//! items) is read in the same pass: each element's members are scanned once, the selecting
//! member is looked up among every address's values at once (a hash map), and the members the
//! addresses continue with are kept as borrowed text until the element ends and it is known
//! which address, if any, the element belongs to.
//!
//! Each value found also keeps where its text is in the payload: a number read into a text tag
//! is its JSON text exactly (`1E3`, `12.50`, `12345678901234567890123`), which a built
//! `serde_json::Value` cannot give back without the `arbitrary_precision` feature (which would
//! change number handling for every crate of the workspace).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value as Json;

use crate::json_path::{JsonPath, Step};
use crate::routing::FxMap;

mod found;
mod scan;

use found::Held;
pub use found::{Found, View};

/// The addresses of one station as a tree of steps; slot `i` is the `i`-th address.
#[derive(Debug, Default, Clone)]
pub struct PathTree {
    nodes: Vec<Node>,
    slots: usize,
}

#[derive(Debug, Default, Clone)]
struct Node {
    keys: Vec<(Box<str>, usize)>,
    /// Every one of `keys` is [`written_as_is`]: the scan tries them where a member's name lies.
    keys_as_is: bool,
    /// Each of `keys` as a [`NameWord`].
    key_words: Vec<NameWord>,
    indexes: Vec<(usize, usize)>,
    /// Elements of this array selected by a member's value, one entry per member name.
    selects: Vec<Select>,
    /// With selections: the member names that the selected elements' addresses continue with.
    members: Vec<Box<str>>,
    /// With selections: each member name an element is scanned for, with the selection it
    /// selects by and its place in `members` (one look per member of each element).
    item_keys: Vec<ItemKey>,
    /// With selections: some address takes a selected element whole, so each element's text is
    /// taken before its members are scanned.
    whole_items: bool,
    /// In a node reached by a selection: for each of the parent's `members`, the child of this
    /// node it leads to, if any.
    by_member: Vec<Option<usize>>,
    /// Addresses that end here.
    here: Vec<usize>,
    /// Every address that ends here or below: cleared when the member is met again.
    below: Vec<usize>,
}

impl Node {
    /// No address goes deeper than this node: its value is only taken, never looked into.
    fn is_leaf(&self) -> bool {
        self.keys.is_empty() && self.indexes.is_empty() && self.selects.is_empty()
    }
}

/// A member name that matters in an array's elements: the selection it selects by (`id` in
/// `[id="T1"]`), the member the selected elements' addresses read (`v` in `[id="T1"].v`), or both.
#[derive(Debug, Clone)]
struct ItemKey {
    name: Box<str>,
    select: Option<usize>,
    member: Option<usize>,
    word: NameWord,
}

/// How the scan finds a wanted member name where a member's name lies. A plain name of at most
/// seven bytes, with its closing quote, as the little-endian word its bytes make, and the mask
/// of those bytes (both 0 for any other name): the eight bytes after a member's opening quote
/// are compared with it in one look (`id`, `v`, `temp`...), where a byte-by-byte comparison per
/// wanted name cost more than the rest of a short member.
#[derive(Debug, Default, Clone, Copy)]
struct NameWord {
    word: u64,
    mask: u64,
    /// The name is [`written_as_is`]; one that is not is never found where it lies (the scan
    /// refuses escaped names).
    plain: bool,
}

impl NameWord {
    fn of(name: &str) -> NameWord {
        let mut w = NameWord {
            plain: written_as_is(name),
            ..NameWord::default()
        };
        if w.plain && name.len() < 8 {
            for (i, &b) in name.as_bytes().iter().chain(b"\"").enumerate() {
                w.word |= u64::from(b) << (8 * i);
                w.mask |= 0xff << (8 * i);
            }
        }
        w
    }

    /// Whether `name` (this its word) lies at the start of `rest`, followed by its closing
    /// quote; `head`: the first eight bytes of `rest` as a little-endian word, zeros past its
    /// end (no name byte nor quote is zero, so a short name is never found in them). A short
    /// name is one look at `head`, a longer one is compared byte by byte.
    #[inline(always)]
    fn lies(self, head: u64, rest: &[u8], name: &str) -> bool {
        if self.mask != 0 {
            return head & self.mask == self.word;
        }
        let name = name.as_bytes();
        self.plain
            && rest.get(name.len()) == Some(&b'"')
            && rest
                .get(..name.len())
                .is_some_and(|r| scan::same_bytes(r, name))
    }
}

impl ItemKey {
    fn new(name: &str, select: Option<usize>, member: Option<usize>) -> ItemKey {
        ItemKey {
            name: name.into(),
            select,
            member,
            word: NameWord::of(name),
        }
    }
}

/// Whether JSON writes `name` as it is: no quote, backslash or control character to escape.
/// Its bytes followed by a quote in a payload are then that name and nothing else.
fn written_as_is(name: &str) -> bool {
    !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

/// The elements selected by the value of one member (`id` in `[id="T1"]`). The values come
/// from the configuration, so a payload cannot lengthen a probe chain: the routing tables'
/// small hash serves, where SipHash cost as much as the rest of an item.
#[derive(Debug, Default, Clone)]
struct Select {
    key: Box<str>,
    /// Each value's place in `values`.
    by_value: FxMap<Box<str>, u32>,
    values: Vec<SelectValue>,
}

/// One value of a selection and the element node it selects.
#[derive(Debug, Clone)]
struct SelectValue {
    text: Box<str>,
    child: usize,
    /// The value is [`written_as_is`]: a payload string of its bytes is that value.
    as_is: bool,
}

impl Select {
    /// The element node selected by the string value `value`.
    fn child(&self, value: &str) -> Option<usize> {
        let v = *self.by_value.get(value)?;
        self.values.get(v as usize).map(|v| v.child)
    }
}

/// For each element of the selecting arrays of a payload, in the payload's order, the value
/// that selected it (its place in its selection's values, plus one) the last time: devices send
/// their items in the same order from one message to the next, so this value is tried first,
/// where the element's value lies, before the value is scanned and looked up. Only a hint: a
/// miss reads the element as if there were none. A station keeps its own.
#[derive(Debug, Default, Clone)]
pub struct ElementHints(Vec<u32>);

impl ElementHints {
    /// Elements beyond this many (in one payload) get no hint: the memory stays bounded.
    const MAX: usize = 4096;

    fn get(&self, element: usize) -> u32 {
        self.0.get(element).copied().unwrap_or(0)
    }

    fn set(&mut self, element: usize, hint: u32) {
        if element < ElementHints::MAX {
            if self.0.len() <= element {
                self.0.resize(element + 1, 0);
            }
            self.0[element] = hint;
        }
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
                n = t.child(n, step);
                t.nodes[n].below.push(slot);
            }
            t.nodes[n].here.push(slot);
        }
        t.link_selections();
        for node in &mut t.nodes {
            node.keys_as_is = node.keys.iter().all(|(k, _)| written_as_is(k));
            node.key_words = node.keys.iter().map(|(k, _)| NameWord::of(k)).collect();
        }
        t
    }

    /// The node `step` leads to from node `n`, made when it is new.
    fn child(&mut self, n: usize, step: &Step) -> usize {
        let next = self.nodes.len();
        let node = &mut self.nodes[n];
        match step {
            Step::Key(k) => match node.keys.iter().find(|(key, _)| **key == **k) {
                Some(&(_, c)) => return c,
                None => node.keys.push((k.as_str().into(), next)),
            },
            Step::Index(i) => match node.indexes.iter().find(|(j, _)| j == i) {
                Some(&(_, c)) => return c,
                None => node.indexes.push((*i, next)),
            },
            Step::Select { key, value } => {
                let at = match node.selects.iter().position(|s| *s.key == **key) {
                    Some(at) => at,
                    None => {
                        node.selects.push(Select {
                            key: key.as_str().into(),
                            ..Select::default()
                        });
                        node.selects.len() - 1
                    }
                };
                let select = &mut node.selects[at];
                if let Some(c) = select.child(value) {
                    return c;
                }
                select
                    .by_value
                    .insert(value.as_str().into(), select.values.len() as u32);
                select.values.push(SelectValue {
                    text: value.as_str().into(),
                    child: next,
                    as_is: written_as_is(value),
                });
            }
        }
        self.nodes.push(Node::default());
        next
    }

    /// For every array with selections: which members its elements are scanned for, where each
    /// selected element's keys are among them, and whether elements are taken whole.
    fn link_selections(&mut self) {
        for n in 0..self.nodes.len() {
            let children: Vec<usize> = self.nodes[n]
                .selects
                .iter()
                .flat_map(|s| s.values.iter().map(|v| v.child))
                .collect();
            let mut members: Vec<Box<str>> = Vec::new();
            let mut whole = false;
            for &c in &children {
                whole |= !self.nodes[c].here.is_empty();
                for (name, _) in &self.nodes[c].keys {
                    if !members.contains(name) {
                        members.push(name.clone());
                    }
                }
            }
            for &c in &children {
                let keys = &self.nodes[c].keys;
                let by_member = members
                    .iter()
                    .map(|m| keys.iter().find(|(k, _)| k == m).map(|&(_, g)| g))
                    .collect();
                self.nodes[c].by_member = by_member;
            }
            let node = &mut self.nodes[n];
            let mut item_keys: Vec<ItemKey> = node
                .selects
                .iter()
                .enumerate()
                .map(|(s, select)| {
                    let member = members.iter().position(|m| *m == select.key);
                    ItemKey::new(&select.key, Some(s), member)
                })
                .collect();
            for (m, name) in members.iter().enumerate() {
                if !item_keys.iter().any(|k| k.name == *name) {
                    item_keys.push(ItemKey::new(name, None, Some(m)));
                }
            }
            node.item_keys = item_keys;
            node.members = members;
            node.whole_items = whole;
        }
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
    ///
    /// A byte scanner (scan.rs) reads the payload first; when it is unsure (escapes, an error),
    /// the serde-based pass below reads it again and decides.
    pub fn extract(&self, payload: &[u8], out: &mut Vec<Option<Found>>) -> Result<(), String> {
        let text = std::str::from_utf8(payload).ok();
        self.extract_checked(payload, text, out, &mut ElementHints::default())
    }

    /// [`extract`](Self::extract) of a payload whose UTF-8 check the caller has made already
    /// (`text`: the payload as text, `None` when it is not UTF-8): the reader needs the text
    /// for the values' spans too, and a second check of every byte cost as much as the
    /// scanner's walk over a short payload.
    pub fn extract_checked(
        &self,
        payload: &[u8],
        text: Option<&str>,
        out: &mut Vec<Option<Found>>,
        hints: &mut ElementHints,
    ) -> Result<(), String> {
        // `resize_with`: `resize` clones its `None` into each slot, a call per slot.
        out.clear();
        out.resize_with(self.slots, || None);
        if scan::extract(self, payload, text, out, hints).is_ok() {
            return Ok(());
        }
        out.clear();
        out.resize_with(self.slots, || None);
        self.extract_with_serde(payload, out)
    }

    /// The serde-based pass: the reference the fast pass must agree with.
    fn extract_with_serde(&self, payload: &[u8], out: &mut [Option<Found>]) -> Result<(), String> {
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
        take(text, &n.here, self.base, self.out).map_err(de::Error::custom)?;
        if n.is_leaf() {
            return Ok(());
        }
        // Deeper addresses are read from the same text, so their spans point into the payload.
        below_text(self.tree, self.node, text, self.base, true, self.out).map_err(de::Error::custom)
    }
}

use serde::Deserialize as _;

/// Builds the value of `text` (a slice of the payload starting at address `base`) and stores it
/// in the slots of the addresses that end there.
fn take(
    text: &str,
    here: &[usize],
    base: usize,
    out: &mut [Option<Found>],
) -> Result<(), serde_json::Error> {
    let held = hold(text)?;
    let start = (text.as_ptr() as usize).wrapping_sub(base);
    put(Found::new(held, start..start + text.len()), here, out);
    Ok(())
}

/// Stores `found` in the slots of the addresses that end where it was found. Usually one
/// address ends there: that store is made where the value was read, without the frame of the
/// loop that clones it for several. Always inlined: left to `#[inline]`, the scanner called it
/// for every member it took (Kepware's items three times each; kepware_100 cost 1.9 % more).
#[inline(always)]
fn put(found: Found, here: &[usize], out: &mut [Option<Found>]) {
    match here {
        [only] => out[*only] = Some(found),
        _ => put_each(found, here, out),
    }
}

/// [`put`] into any number of slots.
fn put_each(found: Found, here: &[usize], out: &mut [Option<Found>]) {
    if let Some((&last, others)) = here.split_last() {
        for &s in others {
            out[s] = Some(found.clone());
        }
        out[last] = Some(found);
    }
}

/// Reads the addresses below node `node` from `text`, a value inside the payload (so that spans
/// still count from the payload's start).
fn below_text(
    tree: &PathTree,
    node: usize,
    text: &str,
    base: usize,
    inside: bool,
    out: &mut [Option<Found>],
) -> Result<(), serde_json::Error> {
    let mut inner = serde_json::Deserializer::from_str(text);
    NodeSeed {
        tree,
        node,
        base,
        inside,
        out,
    }
    .deserialize(&mut inner)
}

/// Keeps the value of a JSON text that the deserializer has just checked: the usual scalars as
/// read (their JSON is made only if a reader asks), anything else built now.
fn hold(text: &str) -> Result<Held, serde_json::Error> {
    let built = |j: Json| Held::Built(Box::new(j));
    match text.as_bytes().first() {
        // A checked string without escapes is its bytes between the quotes.
        Some(b'"') if !has_backslash(text) && text.len() >= 2 => Ok(Held::Plain),
        Some(b'-' | b'0'..=b'9') => {
            let bytes = text.as_bytes();
            if let Some(i) = small_integer(bytes) {
                Ok(Held::Int(i))
            } else if let Some(f) = small_decimal(bytes).filter(|f| f.is_finite()) {
                Ok(Held::Float(f))
            } else {
                text.parse().map(|n| built(Json::Number(n)))
            }
        }
        _ => match text {
            "true" => Ok(Held::Bool(true)),
            "false" => Ok(Held::Bool(false)),
            "null" => Ok(Held::Null),
            _ => serde_json::from_str(text).map(built),
        },
    }
}

/// Whether `text` has a backslash (an escape). Every byte is looked at without an early exit,
/// which the compiler turns into wide compares: strings here are short (time stamps, ids), where
/// a library search cost more to set up than the search itself.
fn has_backslash(text: &str) -> bool {
    text.bytes().fold(false, |found, b| found | (b == b'\\'))
}

/// A whole number of at most 18 digits, read in one pass: it fits 64 bits, so it is exact either
/// way. Anything else (a fraction, an exponent, more digits, and `-0`, which serde makes a
/// float) is `None`, for serde to read.
fn small_integer(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 || (negative && digits[0] == b'0') {
        return None;
    }
    let mut v = 0i64;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(if negative { -v } else { v })
}

/// Powers of ten that are exact in an `f64`.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A decimal fraction without exponent and of at most 15 digits (`21.5`, `-0.125`), read in one
/// pass. Its digits as a whole number and the power of ten are both exact in an `f64`, so one
/// division gives the correctly rounded value, the one serde computes the same way for such a
/// number. Anything else is `None`, for serde to read.
fn small_decimal(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    let point = digits.iter().position(|&b| b == b'.')?;
    let (whole, fraction) = (&digits[..point], &digits[point + 1..]);
    // JSON: at least one digit on each side, and no leading zero before another digit.
    if whole.is_empty()
        || fraction.is_empty()
        || whole.len() + fraction.len() > 15
        || (whole[0] == b'0' && whole.len() > 1)
    {
        return None;
    }
    let mut v = 0u64;
    for &b in whole.iter().chain(fraction) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    let v = v as f64 / EXACT_POWERS_OF_TEN[fraction.len()];
    Some(if negative { -v } else { v })
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

/// The visits of scalars where an object or array was expected: nothing below them is found.
macro_rules! scalars_find_nothing {
    () => {
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
    };
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
        let mut scan = (!n.selects.is_empty()).then(|| ItemScan {
            matched: vec![None; n.selects.len()],
            captured: vec![None; n.members.len()],
        });
        let mut i = 0usize;
        loop {
            let child = n.indexes.iter().find(|(j, _)| *j == i).map(|(_, c)| *c);
            let more = match (&mut scan, child) {
                (None, Some(c)) => seq
                    .next_element_seed(NodeSeed {
                        tree: self.tree,
                        node: c,
                        base: self.base,
                        inside: false,
                        out: &mut *self.out,
                    })?
                    .is_some(),
                (None, None) => seq.next_element::<IgnoredAny>()?.is_some(),
                // Selections only: the element's members are scanned as it is read.
                (Some(scan), None) if !n.whole_items => seq
                    .next_element_seed(ItemSeed {
                        tree: self.tree,
                        node: self.node,
                        base: self.base,
                        out: &mut *self.out,
                        scan,
                        whole: None,
                    })?
                    .is_some(),
                // The element is wanted whole or by position too: its text first.
                (Some(scan), child) => match seq.next_element::<&'de RawValue>()? {
                    None => false,
                    Some(raw) => {
                        let text = raw.get();
                        if let Some(c) = child {
                            below_text(self.tree, c, text, self.base, false, self.out)
                                .map_err(de::Error::custom)?;
                        }
                        let mut inner = serde_json::Deserializer::from_str(text);
                        ItemSeed {
                            tree: self.tree,
                            node: self.node,
                            base: self.base,
                            out: &mut *self.out,
                            scan,
                            whole: Some(text),
                        }
                        .deserialize(&mut inner)
                        .map_err(de::Error::custom)?;
                        true
                    }
                },
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    // Scalars where an object or array was addressed: the addresses below find nothing.
    scalars_find_nothing!();
}

/// What one element of an array with selections showed while its members were read: which
/// address each selecting member's value picks, and the text of the members those addresses
/// continue with. Kept for the whole array so that elements allocate nothing.
struct ItemScan<'de> {
    /// Per selection of the array node: the child its value selects.
    matched: Vec<Option<usize>>,
    /// Per member name of the array node: the member's text in this element.
    captured: Vec<Option<&'de RawValue>>,
}

/// Reads one element of an array with selections (`node` is the array's node).
struct ItemSeed<'t, 'o, 's, 'de> {
    tree: &'t PathTree,
    node: usize,
    base: usize,
    out: &'o mut [Option<Found>],
    scan: &'s mut ItemScan<'de>,
    /// The element's whole text, when an address takes the element itself.
    whole: Option<&'de str>,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// Which selection and which member of an array node a member name is.
struct MemberSeed<'t> {
    node: &'t Node,
}

impl<'de> DeserializeSeed<'de> for MemberSeed<'_> {
    type Value = (Option<usize>, Option<usize>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberSeed<'_> {
    type Value = (Option<usize>, Option<usize>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok((
            self.node.selects.iter().position(|x| *x.key == *s),
            self.node.members.iter().position(|m| **m == *s),
        ))
    }
}

/// The child a selecting member's value picks: only strings select.
fn selected(select: &Select, text: &str) -> Option<usize> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !has_backslash(inner) {
        return select.child(inner);
    }
    let decoded: String = serde_json::from_str(text).ok()?;
    select.child(&decoded)
}

impl<'de> Visitor<'de> for ItemSeed<'_, '_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let n = &self.tree.nodes[self.node];
        self.scan.matched.fill(None);
        self.scan.captured.fill(None);
        while let Some(member) = map.next_key_seed(MemberSeed { node: n })? {
            match member {
                (None, None) => {
                    map.next_value::<IgnoredAny>()?;
                }
                (select, kept) => {
                    let raw = map.next_value::<&'de RawValue>()?;
                    // A repeated member counts as in a parsed document: the last one.
                    if let Some(s) = select {
                        self.scan.matched[s] = selected(&n.selects[s], raw.get());
                    }
                    if let Some(m) = kept {
                        self.scan.captured[m] = Some(raw);
                    }
                }
            }
        }
        for s in 0..n.selects.len() {
            let Some(c) = self.scan.matched[s] else {
                continue;
            };
            // A later element with the same value replaces the earlier one entirely.
            let child = &self.tree.nodes[c];
            for &slot in &child.below {
                self.out[slot] = None;
            }
            if let Some(text) = self.whole.filter(|_| !child.here.is_empty()) {
                take(text, &child.here, self.base, self.out).map_err(de::Error::custom)?;
            }
            for (m, &g) in child.by_member.iter().enumerate() {
                let (Some(g), Some(raw)) = (g, self.scan.captured[m]) else {
                    continue;
                };
                let member = &self.tree.nodes[g];
                if member.is_leaf() {
                    // The common case (`.v`, `.t`, `.q`): the member's text is the value.
                    take(raw.get(), &member.here, self.base, self.out)
                        .map_err(de::Error::custom)?;
                } else {
                    below_text(self.tree, g, raw.get(), self.base, false, self.out)
                        .map_err(de::Error::custom)?;
                }
            }
        }
        Ok(())
    }

    // Elements that are not objects select nothing.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    scalars_find_nothing!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `text` as the line would build it when asked.
    fn build(text: &str) -> Json {
        let found = Found::new(hold(text).unwrap(), 0..text.len());
        found.json(text.as_bytes()).into_owned()
    }

    fn check(doc: &str, paths: &[&str]) {
        let parsed: Vec<JsonPath> = paths.iter().map(|p| JsonPath::parse(p).unwrap()).collect();
        let tree = PathTree::new(&parsed);
        let mut out = Vec::new();
        let full: Result<Json, _> = serde_json::from_str(doc);
        match (tree.extract(doc.as_bytes(), &mut out), full) {
            (Ok(()), Ok(full)) => {
                for (p, got) in parsed.iter().zip(&out) {
                    assert_eq!(
                        got.as_ref().map(|f| f.json(doc.as_bytes()).into_owned()),
                        p.find(&full).cloned(),
                        "{p} in {doc}"
                    );
                    if let Some(f) = got {
                        let again: Json = serde_json::from_str(f.text(doc.as_bytes())).unwrap();
                        assert_eq!(
                            again,
                            *f.json(doc.as_bytes()),
                            "{p} in {doc}: the text is the value's"
                        );
                    }
                }
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{doc}: extract {a:?}, parse {b:?}"),
        }
    }

    /// JSON scalars the quick readers take and leave: small and large numbers of both kinds,
    /// strings with and without escapes, literals.
    const SCALARS: &[&str] = &[
        "0",
        "-0",
        "7",
        "-7",
        "10",
        "-0.0",
        "0.1",
        "0.25",
        "-0.5",
        "21.5",
        "1.0",
        "12.50",
        "123456789012345678",
        "-123456789012345678",
        "1234567890123456789",
        "-1234567890123456789",
        "18446744073709551615",
        "18446744073709551616",
        "123456789012345.6",
        "12345678901234.5",
        "123456789.012345",
        "12345678.9012345678",
        "1.7976931348623157",
        "9.99999999999999",
        "0.000000000000001",
        "0.0000000000000001",
        "1e3",
        "1E-3",
        "-12.5e+2",
        "1.5E2",
        "\"a\"",
        "\"\"",
        "\"a\\nb\"",
        "\"\\u00e9\"",
        // An escape past the first sixteen bytes, and a long plain string.
        "\"2026-11-24T00:00:00.123456789\\u005a\"",
        "\"2026-11-24T00:00:00.123456789+01:00 plain\"",
        "true",
        "false",
        "null",
    ];

    #[test]
    fn scalars_build_as_serde_reads_them() {
        for &text in SCALARS {
            let want: Json = serde_json::from_str(text).unwrap();
            let got = build(text);
            assert_eq!(got, want, "{text}");
            assert_eq!(got.is_f64(), want.is_f64(), "{text}: same kind of number");
        }
    }

    /// The scan reads a value where an address ends, and an array element's member, in the
    /// same pass as it checks it: each is what serde reads, the same kind of number included.
    #[test]
    fn values_read_while_scanned_are_serdes() {
        let mut texts: Vec<String> = SCALARS
            .iter()
            .chain(&["[1]", "{}"])
            .map(|t| t.to_string())
            .collect();
        // Every length of a run of digits, whole and with a point at each place.
        let digits = "1234567890123456789012";
        for len in 1..=digits.len() {
            texts.push(digits[..len].to_string());
            texts.push(format!("-{}", &digits[..len]));
            for point in 1..len {
                texts.push(format!("{}.{}", &digits[..point], &digits[point..len]));
            }
        }
        for text in &texts {
            check(
                &format!(r#"{{"a":{text},"b":[{{"id":"x","v":{text}}}]}}"#),
                &["a", r#"b[id="x"].v"#],
            );
        }
    }

    /// A value kept as read (no JSON made of it) becomes the same tag value, or the same
    /// warning, as its parsed JSON, for every tag type.
    #[test]
    fn values_kept_as_read_convert_as_their_json() {
        use crate::json_value::from_json_text;
        use crate::value::ValueType;
        let strings = [
            "\"868300000\"",
            "\" 23.5 \"",
            "\"true\"",
            "\"2026-11-23T10:00:00.123Z\"",
            "{\"a\":1}",
            "[1,2]",
        ];
        for &text in SCALARS.iter().chain(&strings) {
            let kept = Found::new(hold(text).unwrap(), 0..text.len());
            let json: Json = serde_json::from_str(text).unwrap();
            for ty in ValueType::ALL {
                assert_eq!(
                    from_json_text(&kept.view(text.as_bytes()), || text, ty),
                    from_json_text(&View::from(&json), || text, ty),
                    "{text} into {ty}"
                );
            }
        }
    }

    #[test]
    fn decimals_read_in_one_pass_equal_serde_bit_for_bit() {
        // Every split of digit strings of 1 to 15 digits, and texts JSON refuses.
        let digits = "907199254740993";
        for len in 1..=digits.len() {
            for point in 1..len {
                for sign in ["", "-"] {
                    let text = format!("{sign}{}.{}", &digits[..point], &digits[point..len]);
                    let fast = small_decimal(text.as_bytes()).expect(&text);
                    let serde: f64 = serde_json::from_str(&text).unwrap();
                    assert_eq!(fast.to_bits(), serde.to_bits(), "{text}");
                }
            }
        }
        for text in [
            "1.",
            ".5",
            "01.5",
            "1.2.3",
            "1.5e3",
            "1234567890.1234567",
            "1,5",
            "-",
        ] {
            assert_eq!(small_decimal(text.as_bytes()), None, "{text}");
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
    fn selected_elements_give_the_values_of_the_whole_document() {
        let paths = [
            "values[id=T1].v",
            "values[id=T1].q",
            "values[id=T1].t",
            "values[id=T2].v",
            "values[id=\"T 3\"].v.x",
            "values[id=T2]",
            "values[2].v",
            "values[name=T1].v",
            "values[id=T1].id",
            "values[id=\"é\\\"\"].v",
            "values[id=T1].sub[k=a].n",
            "values",
            "timestamp",
        ];
        for doc in [
            r#"{"timestamp":1,"values":[{"id":"T1","v":25.5,"q":true,"t":17},{"v":2,"q":false,"id":"T2"}]}"#,
            r#"{"values":[{"v":1,"id":"T1"},{"id":"T1","q":0},{"id":"T2","v":[1,{"a":2}]}]}"#,
            r#"{"values":[{"id":"T1","v":1,"id":"T2"},{"id":"T2","v":2,"id":5}]}"#,
            r#"{"values":[{"v":1},"T1",[{"id":"T1"}],null,{"id":"T 3","v":{"x":"y"}}]}"#,
            r#"{"values":[{"id":"\u00e9\"","v":3},{"id":"T1","name":"T1","v":4}]}"#,
            r#"{"values":[{"id":"T1","sub":[{"k":"a","n":1},{"k":"b","n":2}],"v":0}]}"#,
            r#"{"values":{"id":"T1","v":1}}"#,
            r#"{"values":[{"id":"T1","v":1}],"values":[{"id":"T2","v":2}]}"#,
            r#"{"values":[{"id":"T1","v":1},{"id":"T2","v":tru}]}"#,
            r#"{"values":[{"id":"T1","v":1},]}"#,
            r#"{"values":[{"id":"T1","v":1}"#,
            r#"[{"id":"T1"}]"#,
            // Names that begin or are part of a wanted name, and a wanted name with an escape.
            r#"{"values":[{"idx":"T1","v":9},{"i":"T2","vv":1,"id":"T2","v":2},{"\u0069d":"T1","v":7}]}"#,
            r#"{"values":[{"id":"T1\n","v":1},{"id":"T1","v":"\u0031"},{"id":"T1""#,
            // Members before and after the selecting one, repeated, and one selecting nothing.
            r#"{"values":[{"v":1,"id":"T1","v":2,"q":3},{"id":"T2","v":{"x":1},"v":4}]}"#,
            r#"{"values":[{"id":"T9","v":1,"t":2},{"t":3,"id":"T1","sub":[{"k":"a","n":5}]}]}"#,
            r#"{"values":[{"id":"T1","sub":[{"k":"a","n":1}],"sub":[{"k":"b","n":2}]}]}"#,
            r#"{"values":[{"id":"T1","v":1},{"id":"T1","q":2},{"id":"T1","v":[3],"id":"T1"}]}"#,
        ] {
            check(doc, &paths);
            // One selection and no element taken whole: the members after the selecting one
            // are taken as they are read (scan.rs, `item`).
            check(doc, &paths[..5]);
            check(doc, &[paths[0], paths[8], paths[10], paths[4]]);
        }
        let doc = r#"{"values":[{"v":1.5,"q":true,"t":5,"id":"T1"},{"id":"T2","v":"x"}]}"#;
        let parsed: Vec<JsonPath> = ["values[id=T1].v", "values[id=T1].t", "values[id=T2].v"]
            .iter()
            .map(|p| JsonPath::parse(p).unwrap())
            .collect();
        let mut out = Vec::new();
        PathTree::new(&parsed)
            .extract(doc.as_bytes(), &mut out)
            .unwrap();
        let texts: Vec<&str> = out
            .iter()
            .map(|f| f.as_ref().map_or("-", |f| f.text(doc.as_bytes())))
            .collect();
        assert_eq!(texts, ["1.5", "5", "\"x\""]);
        // Without the whole element and the position addressed: the members are scanned as read.
        for doc in [
            r#"{"values":[{"id":"T2","v":2},{"v":1,"q":true,"t":5,"id":"T1"},{"id":"T1"}]}"#,
            r#"{"values":[{"q":true,"id":"T1","v":1,"t":5},{"id":"T9","v":1}]}"#,
        ] {
            check(doc, &paths[..5]);
        }
    }

    /// Wanted member names of up to seven bytes are compared as one word with their quote,
    /// longer ones byte by byte, in objects and in array elements: names around that length,
    /// names that begin or extend another, and names near the payload's end, where fewer than
    /// eight bytes are left.
    #[test]
    fn member_names_of_every_length_are_found() {
        let paths = [
            r#"v[id=a].abcdefg"#,
            r#"v[id=a].abcdefgh"#,
            r#"v[id=a].abcdef"#,
            r#"v[id=a].x"#,
            r#"v[abcdefg=b].x"#,
            "o.abcdefg",
            "o.abcdefgh",
            "o.x",
        ];
        for doc in [
            r#"{"v":[{"id":"a","abcdefg":1,"abcdefgh":2,"abcdef":3,"abcdefgx":4,"x":5}]}"#,
            r#"{"v":[{"abcdefgh":2,"abcdefg":1,"abcde":0,"id":"a","abcdef":3}]}"#,
            r#"{"v":[{"abcdefg":"b","x":1},{"id":"a","x":6}]}"#,
            r#"{"v":[{"id":"a","x":7}]}"#,
            r#"{"v":[{"x":7,"id":"a"}]}"#,
            r#"{"v":[{"id":"a","x""#,
            r#"{"o":{"abcdefgh":1,"abcdefg":2,"abcdefgx":3,"abcdef":4,"xx":5,"x":6}}"#,
            r#"{"o":{"abcdefg":1,"x":2}}"#,
            r#"{"o":{"x":1}}"#,
            r#"{"o":{"x""#,
        ] {
            check(doc, &paths);
            check(doc, &paths[..4]);
        }
    }

    /// An object's wanted names are tried where a member's name lies: names that begin or
    /// extend a wanted one, an empty name, a wanted name written with an escape, repeats.
    #[test]
    fn object_members_are_found_where_they_lie() {
        let paths = ["temp", "t", "\"\"", "a.temp", "a.te"];
        for doc in [
            r#"{"tempx":1,"tem":2,"temp":3,"":4,"t":5,"a":{"te":6,"temp":7,"tempe":8}}"#,
            r#"{"t":1,"temp":2,"temp":3,"a":{"temp":{"x":1},"te":[1]},"a":{"te":9}}"#,
            r#"{"t\u0065mp":1,"t":2}"#,
            r#"{"temp" :1, "t"  : 2 ,"a":{ "te":3}}"#,
            r#"{"temp":1,"t":2,"a":{"te":3}"#,
            r#"{"temp":1,"t":2,"a":{"te:3}}"#,
        ] {
            check(doc, &paths);
        }
    }

    /// One station's payloads read with the hints of the ones before: items in the same order,
    /// reversed, missing, repeated, renamed, escaped, not objects. Each gives what serde finds.
    #[test]
    fn element_hints_never_decide() {
        let paths = [
            r#"values[id=T1].v"#,
            r#"values[id=T2].v"#,
            r#"values[id="T\"3"].v"#,
            r#"values[name=T1].v"#,
            r#"more[id=T2].v"#,
        ];
        let parsed: Vec<JsonPath> = paths.iter().map(|p| JsonPath::parse(p).unwrap()).collect();
        let tree = PathTree::new(&parsed);
        let mut hints = ElementHints::default();
        let docs = [
            r#"{"values":[{"id":"T1","v":1},{"id":"T2","v":2},{"id":"T\"3","v":3}]}"#,
            r#"{"values":[{"id":"T1","v":4},{"id":"T2","v":5},{"id":"T\"3","v":6}]}"#,
            r#"{"values":[{"id":"T2","v":7},{"id":"T1","v":8},{"id":"T\"3","v":9}]}"#,
            r#"{"values":[{"id":"T1","v":10},{"id":"T1x","v":11},{"id":"T","v":12}]}"#,
            r#"{"values":[{"id":"T1","v":13},{"id":"T\u0031","v":14},{"name":"T1","v":15}]}"#,
            r#"{"values":[{"name":"T1","v":16},{"id":"T2","id":"T1","v":17},[1],"T2"]}"#,
            r#"{"values":[5,{"id":"T2","v":18}],"more":[{"id":"T2","v":19}]}"#,
            r#"{"more":[{"id":"T2","v":20}],"values":[{"id":"T2","v":21},{"id":"T1","v":22}]}"#,
            r#"{"values":[{"id":"T1","v":23},{"id":"T2","v":24}]}"#,
            r#"{"values":[{"id":"T1","v":25},{"id":"T2","v":26}]}"#,
        ];
        for doc in docs {
            let mut out = Vec::new();
            tree.extract_checked(doc.as_bytes(), Some(doc), &mut out, &mut hints)
                .unwrap();
            let full: Json = serde_json::from_str(doc).unwrap();
            for (p, got) in parsed.iter().zip(&out) {
                assert_eq!(
                    got.as_ref().map(|f| f.json(doc.as_bytes()).into_owned()),
                    p.find(&full).cloned(),
                    "{p} in {doc}"
                );
            }
        }
    }

    /// A wanted member name with a quote in it (`"a\":\"}"` in an address) is never found by
    /// comparing bytes: a payload that would match it byte for byte is not JSON, and one that
    /// writes it properly escapes the quote.
    #[test]
    fn names_with_quotes_are_not_matched_as_bytes() {
        let paths = [
            r#"values[id=T1]."a\":\"}""#,
            r#""a\":\"}""#,
            "values[id=T1].v",
        ];
        for doc in [
            r#"{"values":[{"id":"T1","a":"}":2}]}"#,
            r#"{"a":"}":2}"#,
            r#"{"values":[{"id":"T1","a\":\"}":2,"v":1}],"a\":\"}":3}"#,
        ] {
            check(doc, &paths);
        }
    }

    /// The fast pass's values for `doc`, or `None` where it leaves the payload to serde.
    fn fast_pass(tree: &PathTree, doc: &str) -> Option<Vec<Option<Found>>> {
        let mut out = vec![None; tree.len()];
        let hints = &mut ElementHints::default();
        let answered = scan::extract(tree, doc.as_bytes(), Some(doc), &mut out, hints);
        answered.is_ok().then_some(out)
    }

    /// The fast pass answers only when it agrees with the serde pass, value and span.
    #[test]
    fn the_fast_pass_agrees_with_the_serde_pass() {
        let paths = [
            "a",
            "a.b",
            "a.b.c",
            "l[1]",
            "l[3].x",
            "l[2][1]",
            "s",
            "n",
            "values[id=T1].v",
            "values[id=T1].t",
            "values[id=T2]",
            "values[1].q",
            "values[id=T1].sub[k=a].n",
            "values",
            "e",
        ];
        let parsed: Vec<JsonPath> = paths.iter().map(|p| JsonPath::parse(p).unwrap()).collect();
        let tree = PathTree::new(&parsed);
        let mut fast_answered = 0;
        for doc in [
            r#"{"a":{"b":{"c":1,"d":[1,2]}},"l":[10,[20,21],{"x":"y"}],"s":"t","n":null}"#,
            r#" { "a" : 1 , "l" : "x" , "s" : { "t" : 1 } } "#,
            r#"{"a":{"b":1},"a":{"x":2}}"#,
            r#"{"a":{"b":{"c":1}},"a":{"b":2}}"#,
            r#"{"e":"\u00e9","a":[{"b":1}]}"#,
            r#"{"e":"tab\t \"q\" é","s":"\/"}"#,
            r#"{"values":[{"id":"T1","v":25.5,"q":true,"t":17},{"v":2,"q":false,"id":"T2"}]}"#,
            r#"{"values":[{"id":"T1","v":1,"id":"T2"},{"id":"T2","v":2,"id":5}]}"#,
            r#"{"values":[{"v":1},"T1",[{"id":"T1"}],null,{"id":"T2","v":{"x":"y"}}]}"#,
            r#"{"values":[{"id":"T1","sub":[{"k":"a","n":1},{"k":"b","n":2}],"v":0}]}"#,
            r#"{"values":[{"id":"T1","v":1}],"values":[{"id":"T2","v":2}]}"#,
            r#"{"a":-0.5e+3,"s":0,"n":[true,false,null,{},[]],"l":[1E3,-12,0.25]}"#,
            r#"{"a":-0,"s":123456789012345678,"e":-9223372036854775808,"n":18446744073709551615}"#,
            r#"{"a": 1,}"#,
            r#"{"a": 01}"#,
            r#"{"a": 1e999}"#,
            r#"{"a": tru}"#,
            r#"{"a": 1} x"#,
            r#"{"a": "x
y"}"#,
            r#""#,
            r#"[1,2,3]"#,
        ] {
            let mut slow = vec![None; tree.len()];
            let serde = tree.extract_with_serde(doc.as_bytes(), &mut slow);
            if let Some(fast) = fast_pass(&tree, doc) {
                fast_answered += 1;
                assert!(
                    serde.is_ok(),
                    "{doc}: the fast pass took what serde refuses"
                );
                assert_eq!(fast, slow, "{doc}");
            }
        }
        assert!(
            fast_answered >= 10,
            "the fast pass answered {fast_answered} times"
        );
    }

    /// One selection and no element taken whole: the fast pass itself answers for members
    /// before, after and between selecting ones, repeated, not wanted or leading deeper, and
    /// gives the serde pass's values; two selecting members in one element it leaves to serde.
    #[test]
    fn members_after_the_selecting_one_are_taken_as_read() {
        let paths = [
            "values[id=T1].v",
            "values[id=T1].t",
            "values[id=T1].id",
            "values[id=T2].v.x",
            "values[id=T1].sub[k=a].n",
        ];
        let parsed: Vec<JsonPath> = paths.iter().map(|p| JsonPath::parse(p).unwrap()).collect();
        let tree = PathTree::new(&parsed);
        for doc in [
            r#"{"values":[{"id":"T1","v":25.5,"q":true,"t":17},{"v":2,"q":false,"id":"T2"}]}"#,
            r#"{"values":[{"v":1,"id":"T1","v":2,"x":3},{"id":"T2","v":{"x":1},"v":{"y":4}}]}"#,
            r#"{"values":[{"id":"T9","v":1,"t":2},{"t":3,"id":"T1","sub":[{"k":"a","n":5}]}]}"#,
            r#"{"values":[{"id":"T1","sub":[{"k":"a","n":1}],"sub":[{"k":"b","n":2}]}]}"#,
            r#"{"values":[{"id":"T1","v":1,"t":7},{"id":"T1","t":2},{"v":3,"id":"T1"}]}"#,
            r#"{"values":[{"id":"T2","v":{"x":[1]}},{"id":"T2","v":5}],"values":[]}"#,
        ] {
            let mut slow = vec![None; tree.len()];
            tree.extract_with_serde(doc.as_bytes(), &mut slow).unwrap();
            assert_eq!(fast_pass(&tree, doc), Some(slow), "{doc}");
        }
        for doc in [
            r#"{"values":[{"id":"T1","v":1,"id":"T2"}]}"#,
            r#"{"values":[{"id":"T9","id":"T1","v":1}]}"#,
        ] {
            assert_eq!(fast_pass(&tree, doc), None, "{doc}");
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
