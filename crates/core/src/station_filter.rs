//! `subscribe_station_address`: the MQTT topic filter a station subscribes to, the narrowest one
//! that covers every topic its address routes (docs/parameters.md, "Per-station subscriptions").
//!
//! The rule, level by level (levels are the parts between the `/` that stand outside any group,
//! class or escape):
//! - `#` and `.*` (the catch-all addresses) subscribe to `#`;
//! - an address that is not a valid regular expression is an exact topic (routing.rs), and so is
//!   its filter;
//! - a level without regular-expression syntax (or whose syntax means one fixed text, such as
//!   `a\.b`) is kept as that text;
//! - a level whose expression cannot match a `/` (`[^/]+`, `\d+`, `(x|y)`) becomes `+`;
//! - the first level that may match a `/` (`.*`, `b.+`, a group or class holding `/`) becomes
//!   `#`, and ends the filter;
//! - flags (`(?i)`), a top-level alternation (`a/x|b/y`) or anything the levels cannot be read
//!   from gives `#` from where it starts: the filter is wider, never narrower, than the address.
//!
//! A literal level holding `+` or `#` (no publisher can use such a topic) becomes `+`, so the
//! filter stays valid.

use regex_syntax::hir::{Class, Hir, HirKind};

/// The topic filter covering `address`.
pub fn covering_filter(address: &str) -> String {
    if address == "#" || address == ".*" {
        return "#".into();
    }
    let Ok(whole) = regex_syntax::parse(address) else {
        // Not an expression: routed as the exact topic only.
        return address
            .split('/')
            .map(literal_level)
            .collect::<Vec<_>>()
            .join("/");
    };
    let mut levels = Vec::new();
    let readable = !address.contains("(?") && !matches!(whole.kind(), HirKind::Alternation(_));
    if readable {
        for level in top_level_split(address) {
            match regex_syntax::parse(level) {
                Ok(hir) => match literal(&hir) {
                    Some(text) => levels.push(literal_level(&text).to_string()),
                    None if !can_match_slash(&hir) => levels.push("+".into()),
                    None => break,
                },
                Err(_) => break,
            }
        }
    }
    if levels.len() < top_level_split(address).len() || !readable {
        levels.push("#".into());
    }
    levels.join("/")
}

/// A literal level as a filter level: itself, or `+` when it holds a wildcard character.
fn literal_level(level: &str) -> &str {
    if level.contains(['+', '#']) {
        "+"
    } else {
        level
    }
}

/// The one text `hir` matches, when it matches exactly one.
fn literal(hir: &Hir) -> Option<String> {
    match hir.kind() {
        HirKind::Empty => Some(String::new()),
        HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).ok(),
        HirKind::Concat(parts) => parts.iter().map(literal).collect(),
        HirKind::Capture(c) => literal(&c.sub),
        _ => None,
    }
}

/// Whether any text `hir` matches may contain a `/`.
fn can_match_slash(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(l) => l.0.contains(&b'/'),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= '/' && '/' <= r.end()),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= b'/' && b'/' <= r.end()),
        HirKind::Repetition(r) => can_match_slash(&r.sub),
        HirKind::Capture(c) => can_match_slash(&c.sub),
        HirKind::Concat(parts) | HirKind::Alternation(parts) => parts.iter().any(can_match_slash),
    }
}

/// `address` split at each `/` outside a group, a class and an escape.
fn top_level_split(address: &str) -> Vec<&str> {
    let b = address.as_bytes();
    let (mut depth, mut class, mut start) = (0usize, false, 0usize);
    let mut parts = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !class => {
                class = true;
                // A `]` right after `[` or `[^` is a literal member.
                if b.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if class => class = false,
            b'(' if !class => depth += 1,
            b')' if !class => depth = depth.saturating_sub(1),
            b'/' if !class && depth == 0 => {
                parts.push(&address[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&address[start.min(address.len())..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_narrowest_filter_that_covers_the_address() {
        let rows: &[(&str, &str)] = &[
            ("plant/line1/temp", "plant/line1/temp"),
            ("#", "#"),
            (".*", "#"),
            ("sensors/[^/]+/temp", "sensors/+/temp"),
            ("site/r/17/[^/]+", "site/r/17/+"),
            ("status/batt.*", "status/#"),
            ("status/b.*/x", "status/#"),
            ("dev/\\d+/state", "dev/+/state"),
            ("dev/(a|b)/state", "dev/+/state"),
            ("a\\.b/c", "a.b/c"),
            ("a/x|b/y", "#"),
            ("(?i)abc/d", "#"),
            ("a/(b/c)+", "a/#"),
            ("a/[b/]x", "a/#"),
            ("a/\\w+/[0-9]{2}", "a/+/+"),
            ("a//b", "a//b"),
            ("sensor/[x", "sensor/[x"),
            ("+/temp", "+/temp"),
            ("a/b#c", "a/+"),
            ("dev/[]x]/s", "dev/+/s"),
            ("^a/b$", "+/+"),
        ];
        for (address, filter) in rows {
            let got = covering_filter(address);
            assert_eq!(got, *filter, "{address}");
            assert!(
                crate::config::check_topic_filter(&got).is_ok(),
                "{address}: {got}"
            );
        }
    }
}
