//! Comma-separated payloads (WCC Lite's `value,timestamp,quality`): one record whose fields are
//! addressed by position (`CSV=1`). A field may be written in double quotes, with `""` for a
//! quote inside, so that it can hold the separator; a line break at the end is ignored.

use std::borrow::Cow;

/// Why a payload is not one CSV record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error(
        "it holds more than one line (a line break at byte {at}); a CSV payload is one record"
    )]
    SeveralLines { at: usize },
    #[error("the quote that opens field {field} is not closed")]
    Unclosed { field: usize },
    #[error("field {field} has text after its closing quote")]
    AfterQuote { field: usize },
}

/// The separator parameter (`csv_separator`): one character, or `tab`. Quotes and line breaks
/// cannot separate fields.
pub fn separator(text: &str) -> Result<char, String> {
    if text.eq_ignore_ascii_case("tab") || text == "\\t" {
        return Ok('\t');
    }
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !matches!(c, '"' | '\r' | '\n') => Ok(c),
        (Some('"' | '\r' | '\n'), None) => {
            Err("a quote or a line break cannot separate fields".into())
        }
        _ => Err("expected one character (such as , or ;) or tab".into()),
    }
}

/// Splits one record into its fields (`out` is cleared first). Fields without quotes are taken
/// as written, spaces included.
pub fn split<'a>(text: &'a str, sep: char, out: &mut Vec<Cow<'a, str>>) -> Result<(), CsvError> {
    out.clear();
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    let mut rest = text;
    loop {
        let field = out.len() + 1;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut inner = quoted;
            loop {
                let Some(q) = inner.find('"') else {
                    return Err(CsvError::Unclosed { field });
                };
                value.push_str(&inner[..q]);
                inner = &inner[q + 1..];
                match inner.strip_prefix('"') {
                    Some(after) => {
                        value.push('"');
                        inner = after;
                    }
                    None => break,
                }
            }
            out.push(Cow::Owned(value));
            match inner.chars().next() {
                None => return Ok(()),
                Some(c) if c == sep => rest = &inner[c.len_utf8()..],
                Some('\r' | '\n') => {
                    return Err(CsvError::SeveralLines {
                        at: text.len() - inner.len(),
                    })
                }
                Some(_) => return Err(CsvError::AfterQuote { field }),
            }
            continue;
        }
        let end = rest.find([sep, '\n', '\r']);
        match end {
            None => {
                out.push(Cow::Borrowed(rest));
                return Ok(());
            }
            Some(e) => {
                out.push(Cow::Borrowed(&rest[..e]));
                let c = rest[e..].chars().next().unwrap_or(sep);
                if c != sep {
                    return Err(CsvError::SeveralLines {
                        at: text.len() - rest.len() + e,
                    });
                }
                rest = &rest[e + c.len_utf8()..];
            }
        }
    }
}

/// Whether a field says "no value": `nan` in any case (WCC Lite's invalid reading).
pub fn is_nan(field: &str) -> bool {
    let f = field.trim();
    let f = f.strip_prefix(['-', '+']).unwrap_or(f);
    f.eq_ignore_ascii_case("nan")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str, sep: char) -> Result<Vec<String>, CsvError> {
        let mut out = Vec::new();
        split(text, sep, &mut out)?;
        Ok(out.into_iter().map(Cow::into_owned).collect())
    }

    #[test]
    fn records_split_into_fields() {
        let rows: &[(&str, char, &[&str])] = &[
            ("23.5,1700000000000,1", ',', &["23.5", "1700000000000", "1"]),
            ("nan,1700000000000,0\n", ',', &["nan", "1700000000000", "0"]),
            ("1;2\r\n", ';', &["1", "2"]),
            ("", ',', &[""]),
            ("a,,b,", ',', &["a", "", "b", ""]),
            (" 1 , 2 ", ',', &[" 1 ", " 2 "]),
            (r#""a,b","say ""hi""",c"#, ',', &["a,b", r#"say "hi""#, "c"]),
            ("\"\"", ',', &[""]),
            ("x\ty", '\t', &["x", "y"]),
            ("é→1→2", '→', &["é", "1", "2"]),
        ];
        for (text, sep, want) in rows {
            assert_eq!(fields(text, *sep).unwrap(), *want, "{text:?}");
        }
    }

    #[test]
    fn broken_records_say_why() {
        let rows: &[(&str, CsvError)] = &[
            ("1,2\n3,4", CsvError::SeveralLines { at: 3 }),
            ("1\r2", CsvError::SeveralLines { at: 1 }),
            ("\"a\"\nb", CsvError::SeveralLines { at: 3 }),
            ("1,\"open", CsvError::Unclosed { field: 2 }),
            ("\"a\"b,c", CsvError::AfterQuote { field: 1 }),
        ];
        for (text, want) in rows {
            assert_eq!(fields(text, ','), Err(want.clone()), "{text:?}");
        }
    }

    #[test]
    fn separators_and_nan() {
        assert_eq!(separator(","), Ok(','));
        assert_eq!(separator("TAB"), Ok('\t'));
        assert_eq!(separator("\\t"), Ok('\t'));
        assert_eq!(separator("|"), Ok('|'));
        assert!(separator("\"").is_err());
        assert!(separator(",,").is_err());
        assert!(separator("").is_err());
        for (f, nan) in [
            ("nan", true),
            (" NaN ", true),
            ("-nan", true),
            ("1", false),
            ("", false),
        ] {
            assert_eq!(is_nan(f), nan, "{f:?}");
        }
    }
}
