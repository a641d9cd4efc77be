//! Text from the configuration or from the broker as it appears in messages: control characters
//! escaped, and long values cut after their start with their length, so that the reason that
//! follows a value in a message is never pushed out of sight.

use std::borrow::Cow;
use std::fmt::Write as _;

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

/// Text from outside (topics, payloads, written values) as it may appear in a log line or on a
/// terminal: control characters (C0, DEL, C1), the Unicode line and paragraph separators and
/// the bidirectional controls are written as `\n`, `\r`, `\t` or `\u{1b}`, so the text can
/// neither forge log lines nor drive the operator's terminal. Everything else, backslashes
/// included, is kept, so escaping escaped text changes nothing.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Bytes from outside that should hold UTF-8 (a topic): decoded with invalid sequences
/// replaced, then escaped as [`escape`] does.
pub fn escape_bytes(bytes: &[u8]) -> String {
    escape(&String::from_utf8_lossy(bytes)).into_owned()
}

/// Binary data shown as text (MQTT 5 Correlation Data, Sparkplug Bytes): lowercase
/// hexadecimal, two digits a byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The first [`KEEP_CHARS`] characters, [`escape`]d, and whether anything was left out.
fn excerpt(text: &str) -> (String, bool) {
    let mut kept = String::with_capacity(text.len().min(KEEP_CHARS * 2));
    let mut chars = text.chars();
    for c in chars.by_ref().take(KEEP_CHARS) {
        push_escaped(&mut kept, c);
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
        let escaped_then_cut = shorten(&format!("\x1b{}", "x".repeat(200)));
        assert!(
            escaped_then_cut.starts_with("\\u{1b}xxx"),
            "{escaped_then_cut}"
        );
        assert_eq!(escaped_then_cut.chars().filter(|&c| c == 'x').count(), 79);
    }

    /// Each row: outside text, as it must appear in a log line.
    #[test]
    fn control_characters_are_escaped() {
        let rows = [
            ("plain/topic é", "plain/topic é"),
            ("a\x1b[31mred", "a\\u{1b}[31mred"),
            ("bell\x07", "bell\\u{7}"),
            ("line\r\nINFO forged", "line\\r\\nINFO forged"),
            ("tab\there", "tab\\there"),
            ("del\x7f c1\u{9b}", "del\\u{7f} c1\\u{9b}"),
            ("sep\u{2028}bidi\u{202e}", "sep\\u{2028}bidi\\u{202e}"),
            ("nul\0", "nul\\u{0}"),
            ("back\\slash", "back\\slash"),
        ];
        for (text, shown) in rows {
            assert_eq!(escape(text), shown, "{text:?}");
            assert_eq!(escape(shown), shown, "escaping twice changes nothing");
        }
        assert!(matches!(escape("clean"), Cow::Borrowed(_)));
    }
}
