//! The fast pass of [`PathTree::extract`]: a byte scanner
//! over the payload that walks the same address tree as the serde-based pass and finds the same
//! values, without serde's per-member machinery (a visitor per value, a UTF-8 check per member
//! name and per value taken, a second parse of each number).
//!
//! It only answers when it is sure: the payload must be valid UTF-8 and plain JSON (no `\u`
//! escapes, no escaped member names, nesting within [`MAX_DEPTH`]), and every value taken must
//! build. Anything else, an error included, answers `None` and the serde-based pass reads the
//! payload again, so its error texts (with line and column) and its rules stay the only ones.

use super::{
    put, selected, take, ElementHints, Found, Held, ItemKey, Node, PathTree, Select,
    EXACT_POWERS_OF_TEN,
};

/// The bytes that end a run of plain string bytes: a quote, a backslash, a control character.
/// One look in a table per byte instead of three comparisons.
const ENDS_RUN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Deeper than this, the serde pass decides (serde_json stops at 128).
const MAX_DEPTH: usize = 100;

/// A hint (ElementHints) is the selection's place above these bits and its value's place plus
/// one below them; a selection or value beyond them gets no hint.
const HINT_VALUE_BITS: u32 = 20;
const HINT_VALUE_MASK: u32 = (1 << HINT_VALUE_BITS) - 1;

/// The hint for value `v` of selection `s` (0: none).
fn hint(s: usize, v: u32) -> u32 {
    match u32::try_from(s) {
        Ok(s) if s < 1 << (32 - HINT_VALUE_BITS) && v < HINT_VALUE_MASK => {
            s << HINT_VALUE_BITS | (v + 1)
        }
        _ => 0,
    }
}

/// A member of an array element kept until the element ends: where its value starts and ends,
/// and the value when the scan could keep it as read.
type Captured = (usize, usize, Option<Held>);

/// Why the fast pass gave up; the serde pass reads the payload instead.
pub(super) struct Unsure;

type Scan<T> = Result<T, Unsure>;

/// Fills `out` (already sized and cleared) with the value of each address of `tree`.
/// `text` is `payload` as text, `None` when it is not UTF-8 (checked once, by the caller).
pub(super) fn extract(
    tree: &PathTree,
    payload: &[u8],
    text: Option<&str>,
    out: &mut [Option<Found>],
    hints: &mut ElementHints,
) -> Scan<()> {
    let text = text.ok_or(Unsure)?;
    if text.len() != payload.len() || text.as_ptr() != payload.as_ptr() {
        return Err(Unsure);
    }
    let mut s = Scanner {
        tree,
        text,
        bytes: payload,
        out,
        hints,
        elements: 0,
        selected: Vec::new(),
    };
    let at = s.ws(0);
    let end = s.walk(0, false, at, 0)?;
    let end = s.ws(end);
    if end != payload.len() {
        return Err(Unsure);
    }
    Ok(())
}

struct Scanner<'t, 'p, 'o> {
    tree: &'t PathTree,
    text: &'p str,
    bytes: &'p [u8],
    out: &'o mut [Option<Found>],
    hints: &'o mut ElementHints,
    /// Elements of selecting arrays met so far: the next one's place in `hints`.
    elements: usize,
    /// The element nodes selected so far in this payload, a bit each (made at the first).
    selected: Vec<u64>,
}

impl Scanner<'_, '_, '_> {
    fn node(&self, n: usize) -> &Node {
        &self.tree.nodes[n]
    }

    /// Skips JSON whitespace from `at`. Compact JSON, the common case, has none: one look.
    fn ws(&self, at: usize) -> usize {
        if !matches!(self.bytes.get(at), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            return at;
        }
        let rest = self.bytes.get(at..).unwrap_or_default();
        at + rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\n' | b'\t' | b'\r'))
            .unwrap_or(rest.len())
    }

    fn byte(&self, at: usize) -> Scan<u8> {
        self.bytes.get(at).copied().ok_or(Unsure)
    }

    /// The value at `at` for tree node `node`: taken when an address ends there (unless
    /// `inside`: it was taken already), then searched for deeper addresses. Returns its end.
    fn walk(&mut self, node: usize, inside: bool, at: usize, depth: usize) -> Scan<usize> {
        if depth > MAX_DEPTH {
            return Err(Unsure);
        }
        let n = &self.tree.nodes[node];
        if !n.here.is_empty() && !inside {
            let (end, held) = self.scalar(at, depth)?;
            self.take_held(at, end, held, &n.here)?;
            if n.is_leaf() {
                return Ok(end);
            }
            // Deeper addresses are read from the same text.
            self.walk(node, true, at, depth)?;
            return Ok(end);
        }
        match self.byte(at)? {
            b'{' => self.object(node, at, depth),
            b'[' if !n.selects.is_empty() => self.selecting_array(node, at, depth),
            b'[' => self.array(node, at, depth),
            _ => self.skip(at, depth),
        }
    }

    fn take(&mut self, start: usize, end: usize, here: &[usize]) -> Scan<()> {
        let text = self.text.get(start..end).ok_or(Unsure)?;
        take(text, here, self.text.as_ptr() as usize, self.out).map_err(|_| Unsure)
    }

    /// [`Scanner::take`] of a value the scan has already read (`held`), or else of its text.
    fn take_held(
        &mut self,
        start: usize,
        end: usize,
        held: Option<Held>,
        here: &[usize],
    ) -> Scan<()> {
        match held {
            Some(held) => {
                put(Found::new(held, start..end), here, self.out);
                Ok(())
            }
            None => self.take(start, end, here),
        }
    }

    /// An object whose members may lead to addresses.
    fn object(&mut self, node: usize, at: usize, depth: usize) -> Scan<usize> {
        let mut at = self.ws(at + 1);
        if self.byte(at)? == b'}' {
            return Ok(at + 1);
        }
        loop {
            let (child, after) = self.member(at, self.node(node))?;
            let value_at = self.colon(after)?;
            let end = self.member_value(child, value_at, depth + 1)?;
            match self.next(end, b'}')? {
                Some(next) => at = next,
                None => return Ok(self.ws(end) + 1),
            }
        }
    }

    /// The value at `at` of a member that leads to tree node `child` (`None`: to no address),
    /// read and taken; returns its end. An object's members and a selected element's come
    /// through here; written into each of the two loops, as `#[inline]` alone did not, it keeps
    /// their cost (left a call of its own, raw_json cost 2 % more and lorawan_8ja 5 %).
    #[inline(always)]
    fn member_value(&mut self, child: Option<usize>, at: usize, depth: usize) -> Scan<usize> {
        let tree = self.tree;
        match child {
            // The common member (`temp` in `{"temp":21.5}`, `v` in a Kepware item): a value
            // that only addresses end at, read here instead of in a walk of its own. Its value
            // replaces any earlier one's in the same slots, so nothing needs clearing first.
            Some(c) if tree.nodes[c].is_leaf() && !tree.nodes[c].here.is_empty() => {
                let (end, held) = self.scalar(at, depth)?;
                match held {
                    Some(held) => put(Found::new(held, at..end), &tree.nodes[c].here, self.out),
                    None => self.take(at, end, &tree.nodes[c].here)?,
                }
                Ok(end)
            }
            Some(c) => {
                // A repeated member replaces the earlier one entirely.
                for &s in &tree.nodes[c].below {
                    self.out[s] = None;
                }
                self.walk(c, false, at, depth)
            }
            None => self.skip(at, depth),
        }
    }

    /// An array whose elements may be addressed by position.
    fn array(&mut self, node: usize, at: usize, depth: usize) -> Scan<usize> {
        let mut at = self.ws(at + 1);
        if self.byte(at)? == b']' {
            return Ok(at + 1);
        }
        let mut i = 0usize;
        loop {
            let end = match index(self.node(node), i) {
                Some(c) => self.walk(c, false, at, depth + 1)?,
                None => self.skip(at, depth + 1)?,
            };
            i += 1;
            match self.next(end, b']')? {
                Some(next) => at = next,
                None => return Ok(self.ws(end) + 1),
            }
        }
    }

    /// An array whose elements are selected by a member's value (`values[id="T1"].v`).
    fn selecting_array(&mut self, node: usize, at: usize, depth: usize) -> Scan<usize> {
        let n = &self.tree.nodes[node];
        let mut matched: Vec<Option<usize>> = vec![None; n.selects.len()];
        let mut captured: Vec<Option<Captured>> = vec![None; n.members.len()];
        let whole_items = n.whole_items;
        let mut at = self.ws(at + 1);
        if self.byte(at)? == b']' {
            return Ok(at + 1);
        }
        let mut i = 0usize;
        loop {
            let child = index(self.node(node), i);
            let end = if whole_items || child.is_some() {
                let end = self.skip(at, depth + 1)?;
                if let Some(c) = child {
                    self.walk(c, false, at, depth + 1)?;
                }
                self.item(node, at, Some(end), &mut matched, &mut captured, depth + 1)?;
                end
            } else {
                self.item(node, at, None, &mut matched, &mut captured, depth + 1)?
            };
            i += 1;
            match self.next(end, b']')? {
                Some(next) => at = next,
                None => return Ok(self.ws(end) + 1),
            }
        }
    }

    /// One element of an array with selections (`node` is the array's node); `whole`: the end
    /// of the element, when an address takes an element whole. Returns the element's end.
    fn item(
        &mut self,
        node: usize,
        at: usize,
        whole: Option<usize>,
        matched: &mut [Option<usize>],
        captured: &mut [Option<Captured>],
        depth: usize,
    ) -> Scan<usize> {
        if depth > MAX_DEPTH {
            return Err(Unsure);
        }
        let element = self.elements;
        self.elements += 1;
        if self.byte(at)? != b'{' {
            // Elements that are not objects select nothing.
            return self.skip(at, depth);
        }
        let tree = self.tree;
        let n = &tree.nodes[node];
        // With one selection and no element taken whole (Kepware's `values[id="T1"].v`), the
        // members after the selecting one are taken as they are read instead of kept until the
        // element ends: devices write the selecting member first. `verdict`: what that member
        // selected, once read.
        let at_once = whole.is_none() && n.selects.len() == 1;
        let mut verdict: Option<Option<usize>> = None;
        if !at_once {
            matched.fill(None);
        }
        // `captured` comes in empty and is emptied again below only when a member was kept.
        let mut kept = false;
        let mut pos = self.ws(at + 1);
        let end = if self.byte(pos)? == b'}' {
            pos + 1
        } else {
            loop {
                let (hit, after) = self.item_key(pos, &n.item_keys)?;
                let value_at = self.colon(after)?;
                let member = hit.and_then(|h| h.member);
                let end = match (hit.and_then(|h| h.select), verdict) {
                    // A repeated member counts as in a parsed document: the last one. Which
                    // of two selecting values counts is left to the serde pass.
                    (Some(_), Some(_)) if at_once => return Err(Unsure),
                    (Some(s), _) => {
                        let (child, end) =
                            self.selecting_value(&n.selects[s], s, element, value_at, depth)?;
                        if let Some(m) = member {
                            captured[m] = Some((value_at, end, None));
                            kept = true;
                        }
                        if !at_once {
                            matched[s] = child;
                        } else if let Some(c) = child {
                            self.clear(c);
                            if kept {
                                self.replay(c, captured, depth)?;
                            }
                        }
                        verdict = Some(child);
                        end
                    }
                    (None, Some(child)) if at_once => {
                        let leads = child
                            .zip(member)
                            .and_then(|(c, m)| tree.nodes[c].by_member[m]);
                        self.member_value(leads, value_at, depth + 1)?
                    }
                    (None, _) => match member {
                        Some(m) => {
                            let (end, held) = self.scalar(value_at, depth + 1)?;
                            captured[m] = Some((value_at, end, held));
                            kept = true;
                            end
                        }
                        None => self.skip(value_at, depth + 1)?,
                    },
                };
                match self.next(end, b'}')? {
                    Some(next) => pos = next,
                    None => break self.ws(end) + 1,
                }
            }
        };
        if !at_once {
            for &c in matched.iter().flatten() {
                self.clear(c);
                let child = &tree.nodes[c];
                if let Some(whole_end) = whole.filter(|_| !child.here.is_empty()) {
                    self.take(at, whole_end, &child.here)?;
                }
                self.replay(c, captured, depth)?;
            }
        }
        if kept {
            captured.fill(None);
        }
        Ok(end)
    }

    /// Clears what element node `c` addresses when an earlier element of the payload selected
    /// it: a later element with the same value replaces the earlier one entirely.
    fn clear(&mut self, c: usize) {
        if self.selected.is_empty() {
            self.selected.resize(self.tree.nodes.len().div_ceil(64), 0);
        }
        let bit = 1u64 << (c % 64);
        match self.selected.get_mut(c / 64) {
            // The first element with this value: `out` came in empty, and only this node's
            // elements fill these slots.
            Some(word) if *word & bit == 0 => *word |= bit,
            _ => {
                for &slot in &self.tree.nodes[c].below {
                    self.out[slot] = None;
                }
            }
        }
    }

    /// Takes what element node `c` addresses from the members `captured` so far.
    fn replay(&mut self, c: usize, captured: &[Option<Captured>], depth: usize) -> Scan<()> {
        let child = &self.tree.nodes[c];
        for (m, &g) in child.by_member.iter().enumerate() {
            let Some(g) = g else { continue };
            let Some((start, stop, held)) = captured[m].clone() else {
                continue;
            };
            let member = &self.tree.nodes[g];
            if member.is_leaf() {
                // The common case (`.v`, `.t`, `.q`): the member's text is the value.
                self.take_held(start, stop, held, &member.here)?;
            } else {
                self.walk(g, false, start, depth + 1)?;
            }
        }
        Ok(())
    }

    /// After a member or element ending at `end`: the start of the next one, or `None` at the
    /// closing `close`.
    fn next(&self, end: usize, close: u8) -> Scan<Option<usize>> {
        let at = self.ws(end);
        match self.byte(at)? {
            b',' => Ok(Some(self.ws(at + 1))),
            b if b == close => Ok(None),
            _ => Err(Unsure),
        }
    }

    /// The `:` after a member name ending at `at`; returns where the value starts.
    fn colon(&self, at: usize) -> Scan<usize> {
        let at = self.ws(at);
        if self.byte(at)? != b':' {
            return Err(Unsure);
        }
        Ok(self.ws(at + 1))
    }

    /// The member name at `at` among an array element's wanted names (`id`, `v`, `t`...), and
    /// where the name ends. Each wanted name that JSON writes as it is is tried where it would
    /// lie, followed by its closing quote, before any scan: most members of an element are
    /// wanted ones. A name with a quote or backslash is written escaped, which the scan refuses.
    fn item_key<'k>(&self, at: usize, keys: &'k [ItemKey]) -> Scan<(Option<&'k ItemKey>, usize)> {
        if self.byte(at)? != b'"' {
            return Err(Unsure);
        }
        let rest = self.bytes.get(at + 1..).unwrap_or_default();
        let head = word_at(rest);
        let wanted = keys.iter().find(|k| k.word.lies(head, rest, &k.name));
        match wanted {
            Some(k) => Ok((Some(k), at + 2 + k.name.len())),
            // Not a wanted name (or one written with escapes, which the scan refuses).
            None => self.key(at).map(|(_, after)| (None, after)),
        }
    }

    /// The member name at `at` of an object whose members may lead to addresses: the child of
    /// `n` it leads to, and where the name ends. Each wanted name is tried where it would lie,
    /// followed by its closing quote, before the name is scanned (see [`Scanner::item_key`]).
    fn member(&self, at: usize, n: &Node) -> Scan<(Option<usize>, usize)> {
        if n.keys_as_is && self.byte(at)? == b'"' {
            let rest = self.bytes.get(at + 1..).unwrap_or_default();
            let head = word_at(rest);
            let mut keys = n.keys.iter().zip(&n.key_words);
            let wanted = keys
                .find(|((k, _), w)| w.lies(head, rest, k))
                .map(|(k, _)| k);
            if let Some((k, c)) = wanted {
                return Ok((Some(*c), at + 2 + k.len()));
            }
            return self.key(at).map(|(_, after)| (None, after));
        }
        let (key, after) = self.key(at)?;
        let child = n.keys.iter().find(|(k, _)| same(k, key)).map(|(_, c)| *c);
        Ok((child, after))
    }

    /// The element node that the value at `at` of member `select` selects (`s`: its place among
    /// the array's selections; `element`: the element's place in `hints`), and the value's end.
    fn selecting_value(
        &mut self,
        select: &Select,
        s: usize,
        element: usize,
        at: usize,
        depth: usize,
    ) -> Scan<(Option<usize>, usize)> {
        if let Some((child, end)) = self.hinted(select, s, element, at) {
            return Ok((Some(child), end));
        }
        // The usual selecting value, a string without escapes: scanned once and looked up as it
        // lies.
        if let Some((value, end)) = self.plain_string(at) {
            let Some(&v) = select.by_value.get(value) else {
                return Ok((None, end));
            };
            self.hints.set(element, hint(s, v));
            return Ok((select.values.get(v as usize).map(|v| v.child), end));
        }
        let end = self.skip(at, depth + 1)?;
        let text = self.text.get(at..end).ok_or(Unsure)?;
        Ok((selected(select, text), end))
    }

    /// The element node that the value at `at` selects when it is the string the element at the
    /// same place selected by last time (`hints`), and the string's end.
    fn hinted(
        &self,
        select: &Select,
        s: usize,
        element: usize,
        at: usize,
    ) -> Option<(usize, usize)> {
        let h = self.hints.get(element);
        if h == 0 || (h >> HINT_VALUE_BITS) as usize != s {
            return None;
        }
        let value = select
            .values
            .get((h & HINT_VALUE_MASK).checked_sub(1)? as usize)?;
        let text = value.text.as_bytes();
        let end = at + text.len() + 2;
        let lies = value.as_is
            && self.bytes.get(at) == Some(&b'"')
            && self.bytes.get(end - 1) == Some(&b'"')
            && self.bytes.get(at + 1..end - 1) == Some(text);
        lies.then_some((value.child, end))
    }

    /// The string at `at` when it is written without escapes: its content and its end.
    fn plain_string(&self, at: usize) -> Option<(&str, usize)> {
        if self.bytes.get(at) != Some(&b'"') {
            return None;
        }
        let close = self.plain_run(at + 1);
        if self.bytes.get(close) != Some(&b'"') {
            return None;
        }
        Some((self.text.get(at + 1..close)?, close + 1))
    }

    /// A member name without escapes at `at`: its text and where it ends.
    fn key(&self, at: usize) -> Scan<(&str, usize)> {
        if self.byte(at)? != b'"' {
            return Err(Unsure);
        }
        // A name without escapes is one plain run up to its closing quote.
        let close = self.plain_run(at + 1);
        if self.byte(close)? != b'"' {
            return Err(Unsure);
        }
        let name = self.text.get(at + 1..close).ok_or(Unsure)?;
        Ok((name, close + 1))
    }

    /// Where the run of plain string bytes from `at` ends (at a quote, an escape or a control
    /// character, or the payload's end).
    fn plain_run(&self, at: usize) -> usize {
        let rest = self.bytes.get(at..).unwrap_or_default();
        at + rest
            .iter()
            .position(|&b| ENDS_RUN[usize::from(b)])
            .unwrap_or(rest.len())
    }

    /// The end of the string starting at `at` (its opening quote). Control characters and
    /// `\u` escapes are left to the serde pass.
    fn string_end(&self, at: usize) -> Scan<usize> {
        let mut i = at + 1;
        loop {
            // Plain characters in one tight loop; quotes, escapes and control characters below.
            i = self.plain_run(i);
            match self.byte(i)? {
                b'"' => return Ok(i + 1),
                b'\\' => match self.byte(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    _ => return Err(Unsure),
                },
                0..=0x1f => return Err(Unsure),
                _ => i += 1,
            }
        }
    }

    /// [`Scanner::skip`] that also keeps a scalar of the quick forms as read (a string without
    /// escapes, a number [`Held`] takes, a literal): `None` for anything else, built from its
    /// text when taken.
    fn scalar(&self, at: usize, depth: usize) -> Scan<(usize, Option<Held>)> {
        match self.byte(at)? {
            b'"' => {
                let close = self.plain_run(at + 1);
                if self.byte(close)? == b'"' {
                    return Ok((close + 1, Some(Held::Plain)));
                }
                Ok((self.string_end(at)?, None))
            }
            b'-' | b'0'..=b'9' => self.number_held(at),
            b't' => Ok((self.literal(at, b"true")?, Some(Held::Bool(true)))),
            b'f' => Ok((self.literal(at, b"false")?, Some(Held::Bool(false)))),
            b'n' => Ok((self.literal(at, b"null")?, Some(Held::Null))),
            _ => Ok((self.skip(at, depth)?, None)),
        }
    }

    /// [`Scanner::number`] that reads the number in the same pass: a whole number of at most 18
    /// digits (not `-0`, which serde makes a float) as an `i64`, a decimal fraction of at most
    /// 15 digits without exponent as the `f64` one division gives (the rules of `hold`), and
    /// `None` for anything else.
    fn number_held(&self, at: usize) -> Scan<(usize, Option<Held>)> {
        let b = self.bytes;
        let digit = |i: usize| b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9);
        let mut i = at;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let first = i;
        // Wrapping: past 19 digits the value is not kept anyway.
        let mut v = 0u64;
        match self.byte(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while let Some(d) = digit(i) {
                    v = v.wrapping_mul(10).wrapping_add(u64::from(d));
                    i += 1;
                }
            }
            _ => return Err(Unsure),
        }
        let whole = i - first;
        let mut fraction = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while let Some(d) = digit(i) {
                v = v.wrapping_mul(10).wrapping_add(u64::from(d));
                i += 1;
            }
            fraction = i - start;
            if fraction == 0 {
                return Err(Unsure);
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            let start = i;
            while digit(i).is_some() {
                i += 1;
            }
            return if i > start {
                Ok((i, None))
            } else {
                Err(Unsure)
            };
        }
        let held = if fraction == 0 {
            // At most 18 digits fit an i64 whatever they are.
            (whole <= 18 && !(negative && v == 0)).then(|| {
                let v = v as i64;
                Held::Int(if negative { -v } else { v })
            })
        } else {
            (whole + fraction <= 15).then(|| {
                let v = v as f64 / EXACT_POWERS_OF_TEN[fraction];
                Held::Float(if negative { -v } else { v })
            })
        };
        Ok((i, held))
    }

    /// Checks the value at `at` and returns its end.
    fn skip(&self, at: usize, depth: usize) -> Scan<usize> {
        if depth > MAX_DEPTH {
            return Err(Unsure);
        }
        match self.byte(at)? {
            b'"' => self.string_end(at),
            b'{' => {
                let mut at = self.ws(at + 1);
                if self.byte(at)? == b'}' {
                    return Ok(at + 1);
                }
                loop {
                    let after = self.string_end_checked(at)?;
                    let value_at = self.colon(after)?;
                    let end = self.skip(value_at, depth + 1)?;
                    match self.next(end, b'}')? {
                        Some(next) => at = next,
                        None => return Ok(self.ws(end) + 1),
                    }
                }
            }
            b'[' => {
                let mut at = self.ws(at + 1);
                if self.byte(at)? == b']' {
                    return Ok(at + 1);
                }
                loop {
                    let end = self.skip(at, depth + 1)?;
                    match self.next(end, b']')? {
                        Some(next) => at = next,
                        None => return Ok(self.ws(end) + 1),
                    }
                }
            }
            b't' => self.literal(at, b"true"),
            b'f' => self.literal(at, b"false"),
            b'n' => self.literal(at, b"null"),
            b'-' | b'0'..=b'9' => self.number(at),
            _ => Err(Unsure),
        }
    }

    /// A member name at `at` (any string); returns its end.
    fn string_end_checked(&self, at: usize) -> Scan<usize> {
        if self.byte(at)? != b'"' {
            return Err(Unsure);
        }
        self.string_end(at)
    }

    fn literal(&self, at: usize, word: &[u8]) -> Scan<usize> {
        let end = at + word.len();
        if self.bytes.get(at..end) == Some(word) {
            Ok(end)
        } else {
            Err(Unsure)
        }
    }

    /// A number as JSON writes it: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&self, at: usize) -> Scan<usize> {
        let digits = |mut i: usize| {
            let start = i;
            while let Some(b'0'..=b'9') = self.bytes.get(i) {
                i += 1;
            }
            (i > start).then_some(i).ok_or(Unsure)
        };
        let mut i = at;
        if self.bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        i = match self.byte(i)? {
            b'0' => i + 1,
            b'1'..=b'9' => digits(i)?,
            _ => return Err(Unsure),
        };
        if self.bytes.get(i) == Some(&b'.') {
            i = digits(i + 1)?;
        }
        if let Some(b'e' | b'E') = self.bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = self.bytes.get(i) {
                i += 1;
            }
            i = digits(i)?;
        }
        Ok(i)
    }
}

/// The first eight bytes of `rest` as a little-endian word, zeros past its end (see
/// [`super::NameWord`]).
#[inline(always)]
fn word_at(rest: &[u8]) -> u64 {
    match rest.first_chunk::<8>() {
        Some(w) => u64::from_le_bytes(*w),
        None => {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(w)
        }
    }
}

/// Whether two member names are the same: short names byte by byte, where a library
/// comparison's call cost more than the comparison.
fn same(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && if a.len() <= 4 {
            a.iter().zip(b).all(|(x, y)| x == y)
        } else {
            a == b
        }
}

/// The child of an array node for the element at position `i`.
fn index(n: &Node, i: usize) -> Option<usize> {
    n.indexes.iter().find(|(j, _)| *j == i).map(|(_, c)| *c)
}
