//! JSON addresses of `JA=` tags and of the time field: `a.b.c`, `rx.gwrxf[1].time`, `[1].batt`.
//!
//! Array indexes count from 1. A key that contains dots, brackets, quotes or spaces is written in
//! double quotes, with `\"` and `\\` inside: `meta."gw.id"[2]."signal strength"`.

use serde_json::Value as Json;

/// One step into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    /// Zero-based position (the address says `[1]` for the first element).
    Index(usize),
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
                    let open = i;
                    i += 1;
                    let mut key = String::new();
                    loop {
                        match chars.get(i) {
                            None => return Err(err(open, "the quoted key is not closed")),
                            Some('"') => break,
                            Some('\\') => match chars.get(i + 1) {
                                Some(c @ ('"' | '\\')) => {
                                    key.push(*c);
                                    i += 2;
                                }
                                _ => return Err(err(i, "only \\\" and \\\\ may follow '\\'")),
                            },
                            Some(c) => {
                                key.push(*c);
                                i += 1;
                            }
                        }
                    }
                    steps.push(Step::Key(key));
                    i += 1;
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
            if let Step::Key(k) = step {
                k.shrink_to_fit();
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
            };
        }
        Some(doc)
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
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
        ];
        for (text, position, reason) in rows {
            let e = JsonPath::parse(text).expect_err(text);
            assert_eq!(e.position, *position, "{text}: {e}");
            assert!(e.reason.contains(reason), "{text}: {e}");
        }
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
        let arr = json!([{"batt_cell_v_avg": 3.3}]);
        assert_eq!(
            JsonPath::parse("[1].batt_cell_v_avg").unwrap().find(&arr),
            Some(&json!(3.3))
        );
    }
}
