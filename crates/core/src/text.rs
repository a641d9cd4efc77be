//! Text from the configuration or from the broker as it appears in messages: control characters
//! escaped, and long values cut after their start with their length, so that the reason that
//! follows a value in a message is never pushed out of sight.

/// Characters of a value kept in a message.
const KEEP_CHARS: usize = 80;

/// `text` escaped, and cut when long: `aaaa… (70000 bytes)`.
pub fn shorten(text: &str) -> String {
    let (kept, cut) = excerpt(text);
    if cut {
        format!("{kept}… ({} bytes)", text.len())
    } else {
        kept
    }
}

/// `text` in single quotes, escaped, and cut when long: `'aaaa…' (70000 bytes)`.
pub fn quote(text: &str) -> String {
    let (kept, cut) = excerpt(text);
    if cut {
        format!("'{kept}…' ({} bytes)", text.len())
    } else {
        format!("'{kept}'")
    }
}

/// The first [`KEEP_CHARS`] characters with control characters escaped (`\0`, `\n`, `\u{1b}`),
/// and whether anything was left out.
fn excerpt(text: &str) -> (String, bool) {
    let mut kept = String::with_capacity(text.len().min(KEEP_CHARS * 2));
    let mut chars = text.chars();
    for c in chars.by_ref().take(KEEP_CHARS) {
        if c.is_control() {
            kept.extend(c.escape_default());
        } else {
            kept.push(c);
        }
    }
    (kept, chars.next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_messages() {
        let long = "a".repeat(70_000);
        let kept = "a".repeat(KEEP_CHARS);
        for (text, quoted, shortened) in [
            ("", "''".to_string(), String::new()),
            ("QoS_7", "'QoS_7'".into(), "QoS_7".into()),
            ("nu\0id", "'nu\\u{0}id'".into(), "nu\\u{0}id".into()),
            ("a\nb", "'a\\nb'".into(), "a\\nb".into()),
            (
                &long,
                format!("'{kept}…' (70000 bytes)"),
                format!("{kept}… (70000 bytes)"),
            ),
        ] {
            assert_eq!(quote(text), quoted);
            assert_eq!(shorten(text), shortened);
        }
        let exactly = "é".repeat(KEEP_CHARS);
        assert_eq!(shorten(&exactly), exactly, "not cut at exactly the limit");
    }
}
