//! JSON addresses of `JA=` tags and of the time field: `a.b.c`, `rx.gwrxf[1].time`, `[1].batt`.
//!
//! Array indexes count from 1. A key that contains dots, brackets, quotes or spaces is written in
//! double quotes, with `\"` and `\\` inside: `meta."gw.id"[2]."signal strength"`.
//!
//! An array element can also be selected by the value of one of its keys:
//! `values[id="Channel1.Device1.Tag1"].v` is the `v` of the element whose `id` is that string
//! (the last such element when several are). Key and value are written as keys are.

use serde_json::Value as Json;

/// One step into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    /// Zero-based position (the address says `[1]` for the first element).
    Index(usize),
    /// The array element (an object) whose member `key` is the string `value`.
    Select {
        key: String,
        value: String,
    },
}

/// A parsed JSON address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    steps: Vec<Step>,
    text: String,
}

/// Where and why an address does not parse. `position` counts characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {reason}")]
pub struct PathError {
    pub position: usize,
    pub reason: String,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, PathError> {
        let chars: Vec<char> = text.chars().collect();
        let err = |i: usize, reason: &str| PathError {
            position: i + 1,
            reason: reason.to_string(),
        };
        let mut steps = Vec::new();
        let mut i = 0;
        if chars.is_empty() {
            return Err(err(0, "the address is empty"));
        }
        // Whether a key may start here: at the beginning or right after a dot.
        let mut expect_key = true;
        while i < chars.len() {
            match chars[i] {
                '[' => {
                    let start = i;
                    i += 1;
                    if chars
                        .get(i)
                        .is_some_and(|c| !c.is_ascii_digit() && *c != ']')
                    {
                        let (step, next) = parse_select(&chars, i).map_err(|(at, r)| err(at, r))?;
                        steps.push(step);
                        i = next;
                        expect_key = false;
                        continue;
                    }
                    let digits_from = i;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                    if i == digits_from {
                        return Err(err(digits_from, "expected an index number after '['"));
                    }
                    if i >= chars.len() || chars[i] != ']' {
                        return Err(err(i, "expected ']' after the index"));
                    }
                    let n: usize = chars[digits_from..i]
                        .iter()
                        .collect::<String>()
                        .parse()
                        .map_err(|_| err(digits_from, "the index is too large"))?;
                    if n == 0 {
                        return Err(err(start + 1, "indexes count from 1, so [0] is not valid"));
                    }
                    steps.push(Step::Index(n - 1));
                    i += 1;
                    expect_key = false;
                }
                '.' => {
                    if expect_key {
                        return Err(err(i, "expected a key before '.'"));
                    }
                    i += 1;
                    if i >= chars.len() {
                        return Err(err(i - 1, "the address ends with '.'"));
                    }
                    expect_key = true;
                }
                '"' => {
                    if !expect_key {
                        return Err(err(i, "expected '.' or '[' before a quoted key"));
                    }
                    let (key, next) = parse_quoted(&chars, i).map_err(|(at, r)| err(at, r))?;
                    steps.push(Step::Key(key));
                    i = next;
                    expect_key = false;
                }
                ']' => return Err(err(i, "']' without '['")),
                c if c.is_whitespace() => {
                    return Err(err(
                        i,
                        "white space in a key: write the key in double quotes",
                    ))
                }
                _ => {
                    if !expect_key {
                        return Err(err(i, "expected '.' or '[' here"));
                    }
                    let from = i;
                    while i < chars.len()
                        && !matches!(chars[i], '.' | '[' | ']' | '"')
                        && !chars[i].is_whitespace()
                    {
                        i += 1;
                    }
                    steps.push(Step::Key(chars[from..i].iter().collect()));
                    expect_key = false;
                }
            }
        }
        // A line may hold a hundred thousand of these: no spare capacity.
        for step in &mut steps {
            match step {
                Step::Key(k) => k.shrink_to_fit(),
                Step::Select { key, value } => {
                    key.shrink_to_fit();
                    value.shrink_to_fit();
                }
                Step::Index(_) => {}
            }
        }
        steps.shrink_to_fit();
        Ok(JsonPath {
            steps,
            text: text.to_string(),
        })
    }

    /// The value at this address, if the document has one.
    pub fn find<'a>(&self, mut doc: &'a Json) -> Option<&'a Json> {
        for step in &self.steps {
            doc = match step {
                Step::Key(k) => doc.as_object()?.get(k)?,
                Step::Index(n) => doc.as_array()?.get(*n)?,
                Step::Select { key, value } => doc.as_array()?.iter().rev().find(|item| {
                    item.as_object()
                        .and_then(|o| o.get(key))
                        .and_then(Json::as_str)
                        == Some(value.as_str())
                })?,
            };
        }
        Some(doc)
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The address of the array element this address selects by key (up to and including its
    /// last `[key="value"]` step), or `None` when it selects none.
    pub fn item(&self) -> Option<JsonPath> {
        let last = self
            .steps
            .iter()
            .rposition(|s| matches!(s, Step::Select { .. }))?;
        let steps = self.steps[..=last].to_vec();
        let text = steps_text(&steps);
        Some(JsonPath { steps, text })
    }

    /// This address followed by `rest` (`values[id="a"]` and `t` give `values[id="a"].t`).
    pub fn join(&self, rest: &JsonPath) -> JsonPath {
        let mut steps = self.steps.clone();
        steps.extend(rest.steps.iter().cloned());
        let text = steps_text(&steps);
        JsonPath { steps, text }
    }
}

/// Reads a quoted key or value starting at the `"` at `open`: its text and the position after
/// the closing quote.
fn parse_quoted(chars: &[char], open: usize) -> Result<(String, usize), (usize, &'static str)> {
    let mut i = open + 1;
    let mut key = String::new();
    loop {
        match chars.get(i) {
            None => return Err((open, "the quoted key is not closed")),
            Some('"') => return Ok((key, i + 1)),
            Some('\\') => match chars.get(i + 1) {
                Some(c @ ('"' | '\\')) => {
                    key.push(*c);
                    i += 2;
                }
                _ => return Err((i, "only \\\" and \\\\ may follow '\\'")),
            },
            Some(c) => {
                key.push(*c);
                i += 1;
            }
        }
    }
}

/// Reads a key or value without quotes from `from`, up to one of `stop`: its text and where it
/// ends.
fn parse_bare(chars: &[char], from: usize, stop: &[char]) -> (String, usize) {
    let mut i = from;
    while i < chars.len() && !stop.contains(&chars[i]) && !chars[i].is_whitespace() {
        i += 1;
    }
    (chars[from..i].iter().collect(), i)
}

/// Reads `key="value"]` from `from` (just after the `[`): the step and the position after `]`.
fn parse_select(chars: &[char], from: usize) -> Result<(Step, usize), (usize, &'static str)> {
    let (key, i) = match chars.get(from) {
        Some('"') => parse_quoted(chars, from)?,
        _ => parse_bare(chars, from, &['=', ']', '[', '"', '.']),
    };
    let bare_key = chars.get(from) != Some(&'"');
    if bare_key && (key.is_empty() || chars.get(i) == Some(&']')) {
        return Err((from, "expected an index number or key=\"value\" after '['"));
    }
    if chars.get(i) != Some(&'=') {
        return Err((
            i,
            "expected '=' after the key of a selection [key=\"value\"]",
        ));
    }
    let (value, i) = match chars.get(i + 1) {
        Some('"') => parse_quoted(chars, i + 1)?,
        _ => {
            let (v, end) = parse_bare(chars, i + 1, &[']', '[', '"', '=']);
            if v.is_empty() {
                return Err((i + 1, "expected the value after '=' of [key=\"value\"]"));
            }
            (v, end)
        }
    };
    if chars.get(i) != Some(&']') {
        return Err((i, "expected ']' after the value of [key=\"value\"]"));
    }
    Ok((Step::Select { key, value }, i + 1))
}

/// A key as written in an address: bare when it can be, else quoted.
fn write_key(out: &mut String, key: &str) {
    let bare = !key.is_empty()
        && !key
            .chars()
            .any(|c| matches!(c, '.' | '[' | ']' | '"' | '=' | '\\') || c.is_whitespace());
    if bare {
        out.push_str(key);
        return;
    }
    push_quoted(out, key);
}

/// `text` in double quotes, with `\"` and `\\` for the quote and the backslash.
fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The text of an address made of `steps`, which parses back to the same steps.
fn steps_text(steps: &[Step]) -> String {
    let mut out = String::new();
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Key(k) => {
                if n > 0 {
                    out.push('.');
                }
                write_key(&mut out, k);
            }
            Step::Index(i) => {
                out.push('[');
                out.push_str(&(i + 1).to_string());
                out.push(']');
            }
            Step::Select { key, value } => {
                out.push('[');
                write_key(&mut out, key);
                out.push('=');
                push_quoted(&mut out, value);
                out.push(']');
            }
        }
    }
    out
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(k: &str) -> Step {
        Step::Key(k.into())
    }

    fn sel(k: &str, v: &str) -> Step {
        Step::Select {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn addresses_that_parse() {
        let rows: &[(&str, &[Step])] = &[
            ("a", &[Step::Key("a".into())]),
            ("rx.current", &[key("rx"), key("current")]),
            (
                "rx.gwrxf[1].time",
                &[key("rx"), key("gwrxf"), Step::Index(0), key("time")],
            ),
            (
                "[1].batt_cell_v_avg",
                &[Step::Index(0), key("batt_cell_v_avg")],
            ),
            ("a[2][3]", &[key("a"), Step::Index(1), Step::Index(2)]),
            ("\"gw.id\"", &[key("gw.id")]),
            (
                "meta.\"signal strength\"[1]",
                &[key("meta"), key("signal strength"), Step::Index(0)],
            ),
            ("\"a\\\"b\\\\c\"", &[key("a\"b\\c")]),
            ("\"\"", &[key("")]),
            (
                "uplink_message.decoded_payload.luminosity",
                &[
                    key("uplink_message"),
                    key("decoded_payload"),
                    key("luminosity"),
                ],
            ),
            ("ключ.x", &[key("ключ"), key("x")]),
            (
                "values[id=\"Channel1.Device1.Tag1\"].v",
                &[key("values"), sel("id", "Channel1.Device1.Tag1"), key("v")],
            ),
            ("a[id=T1][2]", &[key("a"), sel("id", "T1"), Step::Index(1)]),
            (
                "[\"the id\"=\"x \\\"y\\\" ]\"]",
                &[sel("the id", "x \"y\" ]")],
            ),
            ("a[k=\"\"]", &[key("a"), sel("k", "")]),
            (
                "a[n=\"1\"].b[m=\"2\"].c",
                &[key("a"), sel("n", "1"), key("b"), sel("m", "2"), key("c")],
            ),
        ];
        for (text, steps) in rows {
            let p = JsonPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.steps(), *steps, "{text}");
        }
    }

    #[test]
    fn malformed_addresses_say_where() {
        let rows: &[(&str, usize, &str)] = &[
            ("", 1, "empty"),
            (".a", 1, "expected a key before '.'"),
            ("a..b", 3, "expected a key before '.'"),
            ("a.", 2, "ends with '.'"),
            ("a[0]", 3, "count from 1"),
            ("a[]", 3, "expected an index"),
            ("a[x]", 3, "expected an index"),
            ("a[1", 4, "expected ']'"),
            ("a]", 2, "']' without '['"),
            ("a b", 2, "white space"),
            ("a\"b\"", 2, "expected '.' or '['"),
            ("\"open", 1, "not closed"),
            ("\"a\\x\"", 3, "may follow"),
            ("[1]a", 4, "expected '.' or '[' here"),
            ("a[99999999999999999999999]", 3, "too large"),
            ("a[id]", 3, "expected an index number or key="),
            ("a[ =1]", 3, "expected an index number or key="),
            ("a[id\"x\"]", 5, "expected '='"),
            ("a[id=]", 6, "expected the value"),
            ("a[id=\"x\"", 9, "expected ']' after the value"),
            ("a[id=\"x]", 6, "not closed"),
            ("a[id=x y]", 7, "expected ']' after the value"),
        ];
        for (text, position, reason) in rows {
            let e = JsonPath::parse(text).expect_err(text);
            assert_eq!(e.position, *position, "{text}: {e}");
            assert!(e.reason.contains(reason), "{text}: {e}");
        }
    }

    #[test]
    fn items_and_joined_addresses_print_as_they_parse() {
        let p = JsonPath::parse("x.values[\"the id\"=\"a\\\"b\"].v").unwrap();
        let item = p.item().unwrap();
        assert_eq!(item.to_string(), "x.values[\"the id\"=\"a\\\"b\"]");
        let t = item.join(&JsonPath::parse("t.\"m s\"[2]").unwrap());
        assert_eq!(
            t.to_string(),
            "x.values[\"the id\"=\"a\\\"b\"].t.\"m s\"[2]"
        );
        let again = JsonPath::parse(&t.to_string()).unwrap();
        assert_eq!(again.steps(), t.steps());
        assert!(JsonPath::parse("a.b[1]").unwrap().item().is_none());
    }

    #[test]
    fn find_values() {
        let doc = json!({"rx": {"gwrxf": [{"time": "t1"}, {"time": "t2"}]}, "gw.id": 7});
        let at = |p: &str| JsonPath::parse(p).unwrap().find(&doc).cloned();
        assert_eq!(at("rx.gwrxf[2].time"), Some(json!("t2")));
        assert_eq!(at("\"gw.id\""), Some(json!(7)));
        assert_eq!(at("rx.gwrxf[3].time"), None);
        assert_eq!(at("rx.gwrxf.time"), None);
        assert_eq!(at("rx[1]"), None);
        let kep = json!({"values": [
            {"id": "T1", "v": 1},
            {"v": 2},
            {"id": 3, "v": 3},
            "T1",
            {"id": "T2", "v": 4},
            {"id": "T1", "v": 5, "t": {"ms": 9}}
        ]});
        let at = |p: &str| JsonPath::parse(p).unwrap().find(&kep).cloned();
        assert_eq!(at("values[id=\"T1\"].v"), Some(json!(5)), "the last one");
        assert_eq!(at("values[id=T2].v"), Some(json!(4)));
        assert_eq!(at("values[id=\"3\"].v"), None, "only strings match");
        assert_eq!(at("values[id=T3].v"), None);
        assert_eq!(at("values[id=T1].t.ms"), Some(json!(9)));
        assert_eq!(at("values[1][id=T1]"), None);
        let arr = json!([{"batt_cell_v_avg": 3.3}]);
        assert_eq!(
            JsonPath::parse("[1].batt_cell_v_avg").unwrap().find(&arr),
            Some(&json!(3.3))
        );
    }
}
