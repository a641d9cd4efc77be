//! Which station a received topic belongs to.
//!
//! The rule, in order of priority:
//! 1. a station with address `#` takes every message;
//! 2. a station whose address equals the topic;
//! 3. stations whose address, read as a regular expression, matches the whole topic, tried in
//!    descending order of the address text (so `status/battery` is tried before `status/batt.*`);
//! 4. the station with address `.*`;
//! 5. otherwise the message belongs to no station.
//!
//! Exact addresses are one hash lookup. Regular expressions are indexed by their literal prefix
//! up to its last `/` (`site/r/17/` of `site/r/17/[^/]+`): a topic looks up its prefixes that end
//! at one of its own `/` and have a length some bucket has, and only the expressions of the
//! buckets it hits are evaluated, on the rest of the topic. The rest-of-address expressions of a
//! bucket are compiled together into one multi-pattern regex, and buckets with the same
//! expressions share it, so ten thousand stations of one pattern cost one compiled set. Among
//! the matches the one with the greatest address wins. Expressions without a usable prefix
//! (leading group, alternation at the top, anchors, word boundaries) form the bucket of the empty
//! prefix, which every topic tries.
//!
//! A single `RegexSet` over all expressions was simpler, but its lazy DFA does not fit its
//! cache at a few thousand expressions and falls back to the slow engine: a match cost 1.2 ms at
//! 10,000 stations against 0.13 µs at 10.
//!
//! Start-up: whether an address is a valid expression is decided from its parsed syntax
//! ([`regex_error`]), without compiling it, and each distinct rest-of-address set is compiled
//! once, without the eager full DFA (see [`compile_set`]). Compiling every address three times,
//! as `check_address`, the prefix split and `build` once did, took 94% of the time to configure
//! 10,000 stations.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use regex_automata::meta::{self, Regex as CompiledSet};
use regex_automata::{Input, PatternSet};
use regex_syntax::hir::{Class, Hir, HirKind};

/// Compiled size allowed for all station expressions together (the default of 10 MiB is too
/// small for thousands of stations).
const REGEX_SIZE_LIMIT: usize = 256 << 20;

/// The compiled size above which the regex crate refuses one expression (`Regex::new`'s
/// default): an address beyond it has always counted as no expression.
const SINGLE_REGEX_SIZE_LIMIT: usize = 10 << 20;

use crate::error::ConfigError;

/// A small multiplicative hash (the one rustc uses, "FxHash") for the routing tables. Their keys
/// come from the configuration, not from the broker, so a topic cannot lengthen a probe chain;
/// SipHash, the default, cost as much as the rest of a lookup for short topics.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A station address as the router sees it.
pub struct RouteEntry<'a> {
    /// Index the caller uses for the station.
    pub station: usize,
    /// The station's name, for messages.
    pub name: &'a str,
    pub address: &'a str,
    /// The address is a regular expression with regex syntax, valid ([`AddressCheck::pattern`]);
    /// any other is matched as the exact topic.
    pub pattern: bool,
}

/// What [`check_address`] found of one address.
#[derive(Debug, Default)]
pub struct AddressCheck {
    /// Warnings to log, each naming the station and the address.
    pub warnings: Vec<String>,
    /// Whether the address is a regular expression with regex syntax, valid: the routing
    /// table's patterns. Checked once, when the station is added.
    pub pattern: bool,
}

/// The routing table of one line.
#[derive(Debug, Default)]
pub struct Router {
    catch_all: Option<usize>,
    exact: FxMap<String, usize>,
    /// Regular expressions by literal prefix.
    buckets: FxMap<Box<str>, Bucket>,
    /// The distinct prefix lengths of `buckets`, ascending (each prefix ends with `/`).
    prefix_lens: Vec<usize>,
    /// The empty prefix has a bucket.
    unprefixed: bool,
    /// Compiled rest-of-address sets, shared between buckets with the same expressions.
    sets: Vec<CompiledSet>,
    /// Station of each expression, in descending order of address (the priority).
    regex_stations: Vec<usize>,
    fallback: Option<usize>,
}

/// The expressions that share one literal prefix.
#[derive(Debug)]
struct Bucket {
    /// Index into `Router::sets`.
    set: usize,
    /// Priority (index into `regex_stations`) of each pattern of the set, ascending.
    patterns: Vec<usize>,
}

/// Checks one station address on its own, before the table is built: an empty address is
/// refused; an address that is not a valid regular expression or looks like an MQTT filter gets a
/// warning that explains how it will be matched.
pub fn check_address(name: &str, address: &str) -> Result<AddressCheck, ConfigError> {
    let mut check = AddressCheck::default();
    let warnings = &mut check.warnings;
    if address.is_empty() {
        return Err(ConfigError::InvalidAddress {
            object: format!("station '{name}'"),
            address: String::new(),
            reason: "a station address may not be empty".into(),
        });
    }
    if address == "#" || address == ".*" {
        return Ok(check);
    }
    if looks_like_mqtt_filter(address) {
        warnings.push(format!(
            "station '{name}': address '{address}' looks like an MQTT topic filter, but station \
             addresses are regular expressions (use '[^/]+' for one level and '.*' for several)"
        ));
    }
    // An address of plain characters is a valid expression (of itself): only one with regex
    // syntax, or long enough to come near the size limit, is parsed (thousands of stations are
    // configured at start-up).
    let syntax = has_regex_syntax(address);
    if syntax && is_simple_pattern(address) {
        check.pattern = true;
    } else if syntax || address.len() > PLAIN_ADDRESS_MAX {
        match regex_error(address) {
            None => check.pattern = syntax,
            Some(err) => check.warnings.push(format!(
                "station '{name}': address '{address}' is not a valid regular expression, so it \
                 matches only that exact topic ({err})"
            )),
        }
    }
    Ok(check)
}

impl Router {
    /// Builds the table. Addresses must be unique and not empty (see `check_address`).
    pub fn build(entries: &[RouteEntry]) -> Result<Router, ConfigError> {
        let mut router = Router::default();
        let mut seen: HashMap<&str, &str> = HashMap::with_capacity(entries.len());
        let mut patterns: Vec<(&str, usize)> = Vec::new();

        for e in entries {
            if let Some(other) = seen.insert(e.address, e.name) {
                return Err(ConfigError::DuplicateAddress {
                    object: format!("station '{}'", e.name),
                    address: e.address.to_string(),
                    other: other.to_string(),
                });
            }
            match e.address {
                "#" => router.catch_all = Some(e.station),
                ".*" => router.fallback = Some(e.station),
                address => {
                    router.exact.insert(address.to_string(), e.station);
                    // Addresses without regex syntax match only themselves: the hash lookup
                    // covers them, which keeps the set small.
                    if e.pattern {
                        patterns.push((address, e.station));
                    }
                }
            }
        }

        patterns.sort_by(|a, b| b.0.cmp(a.0));
        // Bucket by literal prefix; priorities ascend within each bucket.
        let mut by_prefix: HashMap<&str, Vec<(usize, &str)>> = HashMap::new();
        // Thousands of stations of one pattern have one rest: check it once.
        let mut rest_ok: HashMap<&str, bool> = HashMap::new();
        for (priority, (address, _)) in patterns.iter().enumerate() {
            let (mut prefix, mut rest) = candidate_split(address);
            if !prefix.is_empty()
                && !*rest_ok
                    .entry(rest)
                    .or_insert_with(|| regex_error(rest).is_none())
            {
                (prefix, rest) = ("", address);
            }
            by_prefix.entry(prefix).or_default().push((priority, rest));
        }
        let mut set_ids: HashMap<Vec<&str>, usize> = HashMap::new();
        for (prefix, members) in by_prefix {
            let rests: Vec<&str> = members.iter().map(|(_, r)| *r).collect();
            let set = match set_ids.get(&rests) {
                Some(&id) => id,
                None => {
                    router.sets.push(compile_set(&rests)?);
                    set_ids.insert(rests, router.sets.len() - 1);
                    router.sets.len() - 1
                }
            };
            if prefix.is_empty() {
                router.unprefixed = true;
            } else {
                router.prefix_lens.push(prefix.len());
            }
            router.buckets.insert(
                prefix.into(),
                Bucket {
                    set,
                    patterns: members.iter().map(|(p, _)| *p).collect(),
                },
            );
        }
        router.prefix_lens.sort_unstable();
        router.prefix_lens.dedup();
        router.regex_stations = patterns.iter().map(|(_, s)| *s).collect();
        Ok(router)
    }

    /// The station a topic is routed to, if any.
    pub fn route(&self, topic: &str) -> Option<usize> {
        if self.catch_all.is_some() {
            return self.catch_all;
        }
        if let Some(&station) = self.exact.get(topic) {
            return Some(station);
        }
        // The lowest priority index is the greatest address: the most specific expression.
        let mut best: Option<usize> = None;
        let max_len = self.prefix_lens.last().copied().unwrap_or(0);
        let slashes = topic
            .bytes()
            .take(max_len)
            .enumerate()
            .filter(|&(_, b)| b == b'/')
            .map(|(i, _)| i + 1);
        let lens = self.unprefixed.then_some(0).into_iter().chain(slashes);
        for len in lens {
            if len > 0 && self.prefix_lens.binary_search(&len).is_err() {
                continue;
            }
            // `/` is never inside a multi-byte character, so `len` is a character boundary.
            let (prefix, rest) = topic.split_at(len);
            let Some(bucket) = self.buckets.get(prefix) else {
                continue;
            };
            if best.is_some_and(|b| b < bucket.patterns[0]) {
                continue;
            }
            let set = &self.sets[bucket.set];
            let first = if bucket.patterns.len() == 1 {
                set.is_match(rest).then_some(0)
            } else {
                let mut matched = PatternSet::new(set.pattern_len());
                set.which_overlapping_matches(&Input::new(rest), &mut matched);
                matched.iter().next().map(|p| p.as_usize())
            };
            if let Some(i) = first {
                let p = bucket.patterns[i];
                best = Some(best.map_or(p, |b| b.min(p)));
            }
        }
        match best {
            Some(p) => Some(self.regex_stations[p]),
            None => self.fallback,
        }
    }
}

/// Splits an expression into a literal prefix that every match starts with, cut after its last
/// `/`, and the expression for the rest of the topic, such that `^(?:address)$` matches a topic
/// exactly when the topic starts with the prefix and `^(?:rest)$` matches what follows. When that cannot be guaranteed
/// (alternation at the top level, `^` or `$`, `\b`-style assertions, a leading group or class)
/// the prefix is empty and the rest is the whole address.
#[cfg(test)]
fn split_literal_prefix(address: &str) -> (&str, &str) {
    match candidate_split(address) {
        (prefix, rest) if !prefix.is_empty() && regex_error(rest).is_none() => (prefix, rest),
        _ => ("", address),
    }
}

/// [`split_literal_prefix`] before the check that the rest is a valid expression on its own.
fn candidate_split(address: &str) -> (&str, &str) {
    let whole = ("", address);
    let b = address.as_bytes();
    // 1. Constructs whose meaning depends on the position in the topic rule a split out.
    let (mut i, mut depth, mut class) = (0usize, 0usize, 0usize);
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            if class == 0 && matches!(b.get(i + 1), Some(b'b' | b'B' | b'A' | b'z' | b'<' | b'>')) {
                return whole;
            }
            i += 2;
            continue;
        }
        if class > 0 {
            match c {
                b'[' => class += 1,
                b']' => class -= 1,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'[' => {
                class = 1;
                i += 1;
                // `[^` negates and a `]` first in a class is literal.
                if b.get(i) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i) == Some(&b']') {
                    i += 1;
                }
                continue;
            }
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b'|' if depth == 0 => return whole,
            b'^' | b'$' => return whole,
            _ => {}
        }
        i += 1;
    }
    if class != 0 || depth != 0 {
        return whole;
    }
    // 2. The literal run up to the first special character; a quantifier takes the last literal
    //    character with it.
    let Some(mut end) = address.find(|c: char| {
        matches!(
            c,
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' | '\\'
        )
    }) else {
        return whole;
    };
    if matches!(b[end], b'*' | b'+' | b'?' | b'{') {
        end = address[..end].char_indices().last().map_or(0, |(i, _)| i);
    }
    // Cutting inside the literal run is as safe as at its end; at a `/` the topic's own level
    // separators say which prefix lengths are worth a lookup.
    end = address[..end].rfind('/').map_or(0, |i| i + 1);
    address.split_at(end)
}

/// Compiles the rest-of-address expressions of a bucket into one set. The regex crate's
/// `RegexSet` would also build a full DFA for each small set whenever some other crate of the
/// program enables regex-automata's `dfa-build` (tracing-subscriber's env-filter does): that
/// determinization was most of a set's build time, and the lazy DFA that remains matches as fast
/// for topics.
fn compile_set(rests: &[&str]) -> Result<CompiledSet, ConfigError> {
    let patterns: Vec<String> = rests.iter().map(|r| anchored(r)).collect();
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .dfa(false)
                .onepass(false),
        )
        .build_many(&patterns)
        .map_err(|e| ConfigError::InvalidAddress {
            object: "line".into(),
            address: String::new(),
            reason: format!("station addresses do not compile together: {e}"),
        })
}

fn anchored(address: &str) -> String {
    format!("^(?:{address})$")
}

/// The longest address of plain characters taken as a valid expression without parsing it: far
/// below what could come near the regex crate's size limit.
const PLAIN_ADDRESS_MAX: usize = 4096;

/// Why `address` is not a regular expression the router uses, or `None` when it is: exactly when
/// the regex crate's `Regex::new` would refuse it. The syntax is parsed as that crate parses it;
/// compiling, which is what costs, is only needed for the rare expression whose compiled size
/// might come near the crate's limit.
fn regex_error(address: &str) -> Option<String> {
    let pattern = anchored(address);
    let hir = match regex_syntax::Parser::new().parse(&pattern) {
        Ok(hir) => hir,
        Err(e) => return Some(last_line(&e.to_string())),
    };
    if nfa_bound_bytes(&hir) <= SINGLE_REGEX_SIZE_LIMIT {
        return None;
    }
    regex::Regex::new(&pattern)
        .err()
        .map(|e| last_line(&e.to_string()))
}

/// Bytes of compiled automata (forward and reverse together) that one unit of [`nfa_bound`]
/// stands for, generously: measured, a unit costs 2 to 32 bytes, and up to 100 in the smallest
/// expressions, whose fixed part [`NFA_FIXED_BYTES`] covers.
const NFA_BYTES_PER_UNIT: usize = 128;
const NFA_FIXED_BYTES: usize = 64 << 10;

/// An upper bound of the bytes the regex crate's automata of `hir` take.
fn nfa_bound_bytes(hir: &Hir) -> usize {
    nfa_bound(hir)
        .saturating_mul(NFA_BYTES_PER_UNIT)
        .saturating_add(NFA_FIXED_BYTES)
}

/// An upper bound of the size of the automaton of `hir`, in units of [`NFA_BYTES_PER_UNIT`].
fn nfa_bound(hir: &Hir) -> usize {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => 1,
        HirKind::Literal(lit) => lit.0.len() + 1,
        // A Unicode range becomes up to a handful of UTF-8 byte sequences of up to 4 bytes.
        HirKind::Class(Class::Unicode(c)) => c.ranges().len().saturating_mul(16) + 1,
        HirKind::Class(Class::Bytes(c)) => c.ranges().len() + 1,
        HirKind::Repetition(rep) => {
            let copies = rep.max.unwrap_or(rep.min).max(rep.min).saturating_add(1);
            nfa_bound(&rep.sub)
                .saturating_mul(copies as usize)
                .saturating_add(1)
        }
        HirKind::Capture(cap) => nfa_bound(&cap.sub).saturating_add(2),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs
            .iter()
            .fold(subs.len(), |n, h| n.saturating_add(nfa_bound(h))),
    }
}

/// The regex crate's message ends with the line that says what is wrong.
fn last_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// True when the address uses a character that means something in a regular expression.
fn has_regex_syntax(address: &str) -> bool {
    address.bytes().any(is_meta)
}

/// The longest address [`is_simple_pattern`] takes as valid without parsing it.
const SIMPLE_PATTERN_MAX: usize = 256;

/// Whether `address` is made only of the pieces station addresses are usually written with:
/// plain characters, an escaped meta character (`\.`), and `.` or `[^/]`, alone or followed by
/// `*` or `+`. Such an address is a valid expression far below the size limit without being
/// parsed: the parse was a seventh of configuring 10,000 stations of which half end in `[^/]+`.
/// Anything else, a quantifier after an escape included, is left to [`regex_error`].
fn is_simple_pattern(address: &str) -> bool {
    if address.len() > SIMPLE_PATTERN_MAX {
        return false;
    }
    let mut rest = address.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = match b {
            b'\\' => match tail.split_first() {
                Some((&escaped, after)) if is_meta(escaped) => after,
                _ => return false,
            },
            b'.' => quantified(tail),
            b'[' if tail.starts_with(b"^/]") => quantified(&tail[3..]),
            _ if is_meta(b) => return false,
            // Bytes of other characters, ASCII or not, stand for themselves.
            _ => tail,
        };
    }
    true
}

/// `rest` past a `*` or `+` that starts it.
fn quantified(rest: &[u8]) -> &[u8] {
    match rest.split_first() {
        Some((b'*' | b'+', after)) => after,
        _ => rest,
    }
}

/// A character that means something in a regular expression (all of them ASCII, so a byte of a
/// longer UTF-8 character is never one).
fn is_meta(b: u8) -> bool {
    matches!(
        b,
        b'.' | b'*'
            | b'+'
            | b'?'
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'|'
            | b'^'
            | b'$'
            | b'\\'
    )
}

/// `a/+/b`, `a/#`, `+/x`: MQTT wildcard levels, which mean something else in a regex.
fn looks_like_mqtt_filter(address: &str) -> bool {
    address.split('/').any(|level| level == "+" || level == "#")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(addresses: &[&str]) -> Router {
        let entries: Vec<RouteEntry> = addresses
            .iter()
            .enumerate()
            .map(|(i, a)| RouteEntry {
                station: i,
                name: a,
                address: a,
                pattern: check_address(a, a).is_ok_and(|c| c.pattern),
            })
            .collect();
        Router::build(&entries).unwrap()
    }

    /// Each row: the station addresses of a line, a topic, and the address that must get it.
    #[test]
    fn routing_priority() {
        let rows: &[(&[&str], &str, Option<&str>)] = &[
            // `#` takes everything, even an exact match elsewhere.
            (&["#", "a/b", ".*"], "a/b", Some("#")),
            (&["#"], "anything/at/all", Some("#")),
            // Exact beats every regular expression and `.*`.
            (
                &["status/battery", "status/batt.*", ".*"],
                "status/battery",
                Some("status/battery"),
            ),
            // Exact match also applies to addresses that are regular expressions.
            (
                &["status/batt.*", "status/b.*"],
                "status/batt.*",
                Some("status/batt.*"),
            ),
            // Regular expressions in descending order of the address text.
            (
                &["status/b.*", "status/batt.*"],
                "status/battery2",
                Some("status/batt.*"),
            ),
            (
                &["status/.*", "status/b.*"],
                "status/battery",
                Some("status/b.*"),
            ),
            (&["z.*", "a.*", "[a-z]+/.*"], "a/x", Some("a.*")),
            // A full match is required.
            (&["status/b", ".*"], "status/battery", Some(".*")),
            (&["batt.*"], "status/battery", None),
            // `.*` is last and takes what nobody else did.
            (&[".*", "x"], "y", Some(".*")),
            // Nothing matches.
            (&["a", "b/.*"], "c/d", None),
            // An invalid expression still works as an exact topic.
            (&["sensor/[x", ".*"], "sensor/[x", Some("sensor/[x")),
            (&["sensor/[x", ".*"], "sensor/x", Some(".*")),
            // `a/+/b` is a regex: '/+' means one or more slashes.
            (&["a/+/b"], "a//b", Some("a/+/b")),
            (&["a/+/b"], "a/x/b", None),
            // Alternation must be anchored as a whole.
            (&["a|b"], "ab", None),
            (&["a|b"], "b", Some("a|b")),
        ];
        for (addresses, topic, want) in rows {
            let r = router(addresses);
            let got = r.route(topic).map(|i| addresses[i]);
            assert_eq!(got, *want, "stations {addresses:?}, topic {topic:?}");
        }
    }

    #[test]
    fn literal_prefixes_split_only_where_safe() {
        let rows: &[(&str, &str)] = &[
            ("site/r/17/[^/]+", "site/r/17/"),
            ("status/batt.*", "status/"),
            ("ab+c", ""),
            ("a/b+c", "a/"),
            ("a/+", ""),
            ("ab/c*", "ab/"),
            ("a/b/c{2}", "a/b/"),
            ("ab?", ""),
            ("a/(?:x|y)/z", "a/"),
            ("a/x|b/y", ""),
            ("(?i)abc.*", ""),
            ("[a-z]+/.*", ""),
            ("ab$.*", ""),
            ("a\\bc.*", ""),
            ("a/\\d+", "a/"),
            ("a/[|]x.", "a/"),
            ("é/ü+", "é/"),
        ];
        for (address, prefix) in rows {
            let (p, rest) = split_literal_prefix(address);
            assert_eq!(p, *prefix, "{address}");
            assert_eq!(format!("{p}{rest}"), *address);
        }
    }

    /// Many expressions, with and without prefixes, route as a linear search in descending
    /// address order would.
    #[test]
    fn indexed_routing_matches_linear_search() {
        let mut addresses: Vec<String> = Vec::new();
        for i in 0..40 {
            addresses.push(format!("site/r/{i}/[^/]+"));
            addresses.push(format!("site/e/{i}/up"));
        }
        for a in [
            "site/r/1.*",
            "site/.*",
            "site/r/1/u.",
            "(?:site|x)/r/2/up",
            "[a-z]+/r/3/.*",
            "site/r/4/u+p",
            "site/r/\\d+/down",
            "site/r/5/(up|down)",
            ".+/up",
        ] {
            addresses.push(a.to_string());
        }
        let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
        let r = router(&refs);
        let mut sorted: Vec<(usize, regex::Regex)> = refs
            .iter()
            .enumerate()
            .filter(|(_, a)| has_regex_syntax(a))
            .map(|(i, a)| (i, regex::Regex::new(&anchored(a)).unwrap()))
            .collect();
        sorted.sort_by(|a, b| refs[b.0].cmp(refs[a.0]));
        let mut topics: Vec<String> = Vec::new();
        for i in 0..45 {
            for leaf in ["up", "down", "uup", "x"] {
                topics.push(format!("site/r/{i}/{leaf}"));
                topics.push(format!("site/e/{i}/{leaf}"));
            }
        }
        topics.extend(
            [
                "x/r/2/up",
                "abc/r/3/q",
                "site/r/4/uuup",
                "",
                "site",
                "other/up",
            ]
            .map(String::from),
        );
        for t in &topics {
            let want = refs.iter().position(|a| a == t).or_else(|| {
                sorted
                    .iter()
                    .find(|(_, re)| re.is_match(t))
                    .map(|(i, _)| *i)
            });
            assert_eq!(r.route(t), want, "topic {t:?}");
        }
    }

    /// Deciding validity from the parsed syntax gives the same answer as compiling, which is
    /// what decided it before: syntax errors, and expressions beyond the regex crate's size limit.
    #[test]
    fn validity_without_compiling_agrees_with_the_regex_crate() {
        let rows = [
            "a/.*",
            "site/r/17/[^/]+",
            "(?i)status/\\w+",
            "\\pL{20}",
            "x{1000}",
            "a/(up|down)",
            "bad([",
            "a{",
            "(?=x)",
            "a\\",
            "a{2,1}",
            "\\w{1000}",
            "(?:\\pL{40}){40}",
            "[^/]{5000}",
            ".{300}",
        ];
        let mut refused_for_size = 0;
        for address in rows {
            let compiled = regex::Regex::new(&anchored(address));
            assert_eq!(
                regex_error(address).is_some(),
                compiled.is_err(),
                "{address}: {:?}",
                compiled.as_ref().err()
            );
            if let Err(regex::Error::CompiledTooBig(_)) = compiled {
                refused_for_size += 1;
            }
        }
        assert!(refused_for_size >= 2, "the rows must reach the size limit");
    }

    /// [`nfa_bound`] must not undercount, or an expression the regex crate refuses would be taken.
    #[test]
    fn nfa_bound_is_an_upper_bound_of_both_automata() {
        use regex_automata::nfa::thompson::{Compiler, Config, WhichCaptures, NFA};
        for address in [
            "site/r/17/[^/]+",
            "(?i)status/\\w+",
            "\\w{50}",
            "\\pL{20}[^/]*",
            "[a-z0-9]{1,8}/(?:x|y|z)+",
            ".{100}",
            "(?s).*",
        ] {
            let pattern = anchored(address);
            let hir = regex_syntax::Parser::new().parse(&pattern).unwrap();
            let forward = NFA::new(&pattern).unwrap().memory_usage();
            let reverse = Compiler::new()
                .configure(
                    Config::new()
                        .reverse(true)
                        .which_captures(WhichCaptures::None),
                )
                .build(&pattern)
                .unwrap()
                .memory_usage();
            let bound = nfa_bound_bytes(&hir);
            assert!(
                forward + reverse <= bound,
                "{address}: {forward} + {reverse} > {bound}"
            );
        }
    }

    #[test]
    fn duplicate_addresses_are_refused() {
        let entries = [
            RouteEntry {
                station: 0,
                name: "one",
                address: "a/b",
                pattern: false,
            },
            RouteEntry {
                station: 1,
                name: "two",
                address: "a/b",
                pattern: false,
            },
        ];
        let err = Router::build(&entries).unwrap_err().to_string();
        assert!(err.contains("station 'two'"), "{err}");
        assert!(
            err.contains("'a/b'") && err.contains("station 'one'"),
            "{err}"
        );
    }

    #[test]
    fn simple_patterns_are_what_the_parser_accepts() {
        let simple = [
            "bench/s7/r/1/[^/]+",
            "plant/.*",
            "plant/.+/x",
            "a.b",
            "x/[^/]*/y",
            r"site\.1/[^/]+",
            r"\[\]\(\)\{\}\|\^\$\*\+\?\\",
            "zürich/.*",
        ];
        for a in simple {
            assert!(is_simple_pattern(a), "{a}");
            assert_eq!(regex_error(a), None, "{a}");
        }
        let other = [
            "a**", ".*?", "[^/]?", r"\.*", r"\d", r"x\", "[^/", "[a]", "a{2}", "(a)", "a|b", "^a$",
            "a?",
        ];
        for a in other {
            assert!(!is_simple_pattern(a), "{a}");
        }
        assert!(!is_simple_pattern(&".*".repeat(200)));
        // Every address of up to four pieces that the quick check takes, the parser takes.
        let pieces = [
            "a", "/", ".", "*", "+", "?", "[^/]", "[", "]", "\\", "\\.", "é",
        ];
        let mut addresses = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = addresses
                .iter()
                .flat_map(|a| pieces.iter().map(move |p| format!("{a}{p}")))
                .collect();
            for a in &longer {
                if is_simple_pattern(a) {
                    assert_eq!(regex_error(a), None, "{a}");
                }
            }
            addresses = longer;
        }
    }

    #[test]
    fn warnings_explain_odd_addresses() {
        let w = check_address("s", "a/+/b").unwrap().warnings;
        assert!(w[0].contains("looks like an MQTT topic filter"), "{w:?}");
        let w = check_address("s", "bad([").unwrap().warnings;
        assert!(w[0].contains("not a valid regular expression"), "{w:?}");
        for ok in ["plain/topic", "re/.*", "#", ".*"] {
            assert!(check_address("s", ok).unwrap().warnings.is_empty(), "{ok}");
        }
        assert!(check_address("s", "").is_err());
    }
}
