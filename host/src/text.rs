//! Text from the plugin or from outside (topics, payloads, paths, broker output) as a terminal
//! may show it. The plugin escapes its own log lines the same way; hosts escape again as a last
//! line of defence, and escaping escaped text changes nothing.

/// Characters that must not reach a terminal raw: controls (C0, DEL, C1), the line and paragraph
/// separators and the bidirectional controls (the set the plugin escapes in its log lines).
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A readable line as it may go to a terminal: invisible characters become `\n`, `\r`, `\t` or
/// `\u{1b}`. Text the plugin escaped already is left as it is.
pub fn escape_readable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_invisible(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}
