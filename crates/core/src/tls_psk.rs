//! TLS with a pre-shared key (`tls_psk_identity`, `tls_psk_key`, `tls_psk_key_file`,
//! `tls_psk_key_env`): where the key comes from and how its hexadecimal text is read.
//!
//! The key is a secret like the password: kept in [`Secret`] (debug form `***`), and no reason
//! this module gives ever contains the key's text, so that an error about a mistyped key cannot
//! put the key into a log line.

use crate::params::Secret;

/// OpenSSL 3 takes identities of at most 256 bytes; a longer one is refused when configured
/// rather than at every connection attempt.
pub const PSK_IDENTITY_MAX: usize = 256;

/// OpenSSL 3 takes keys of at most 512 bytes (1024 hex digits).
pub const PSK_KEY_MAX: usize = 512;

/// Where the pre-shared key comes from. Env and file are read at each connection attempt, as the
/// password's are, so a rotated key is picked up without touching the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PskKeySource {
    /// The key's hexadecimal text, checked when configured.
    Inline(Secret),
    /// The name of an environment variable of the host process holding the hex text.
    Env(String),
    /// A file whose content (without trailing white space) is the hex text.
    File(String),
}

/// The key bytes of its hexadecimal text (mosquitto's `psk_file` and `--psk` form; an optional
/// `0x`, surrounding white space and either case are accepted). The reason never holds the text.
pub fn decode_psk_key(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() {
        return Err("the key is empty; expected hexadecimal digits".into());
    }
    if let Some(pos) = digits.find(|c: char| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "the key is not hexadecimal (a character other than 0-9, a-f, A-F at position {})",
            pos + 1
        ));
    }
    if digits.len() % 2 != 0 {
        return Err(format!(
            "the key has an odd number of hexadecimal digits ({}); each byte takes two",
            digits.len()
        ));
    }
    let bytes: Vec<u8> = digits
        .as_bytes()
        .chunks(2)
        .map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1]))
        .collect();
    if bytes.len() > PSK_KEY_MAX {
        return Err(format!(
            "the key is {} bytes long; TLS-PSK keys are at most {PSK_KEY_MAX} bytes",
            bytes.len()
        ));
    }
    Ok(bytes)
}

fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// Why an identity cannot be sent, or `None`.
pub fn check_psk_identity(identity: &str) -> Option<String> {
    if identity.is_empty() {
        Some("the identity is empty".into())
    } else if identity.len() > PSK_IDENTITY_MAX {
        Some(format!(
            "the identity is {} bytes long; at most {PSK_IDENTITY_MAX}",
            identity.len()
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_are_read_and_bad_ones_refused_without_showing_them() {
        let long = "ab".repeat(PSK_KEY_MAX + 1);
        let rows: &[(&str, Result<&[u8], &str>)] = &[
            ("00", Ok(&[0])),
            ("DeadBeef", Ok(&[0xde, 0xad, 0xbe, 0xef])),
            ("0x0102", Ok(&[1, 2])),
            ("  a1b2\n", Ok(&[0xa1, 0xb2])),
            ("", Err("empty")),
            ("0x", Err("empty")),
            ("12zz", Err("position 3")),
            ("abc", Err("odd number")),
            ("a b", Err("position 2")),
            (&long, Err("at most 512 bytes")),
        ];
        for (text, want) in rows {
            let got = decode_psk_key(text);
            match want {
                Ok(bytes) => assert_eq!(got.as_deref(), Ok(*bytes), "{text:?}"),
                Err(part) => {
                    let reason = got.expect_err(text);
                    assert!(reason.contains(part), "{text:?}: {reason}");
                    if text.trim().len() > 2 {
                        assert!(!reason.contains(text.trim()), "{text:?}: {reason}");
                    }
                }
            }
        }
    }

    #[test]
    fn identities_are_bounded() {
        assert_eq!(check_psk_identity("line-1"), None);
        assert!(check_psk_identity("").is_some());
        assert!(check_psk_identity(&"i".repeat(PSK_IDENTITY_MAX)).is_none());
        assert!(check_psk_identity(&"i".repeat(PSK_IDENTITY_MAX + 1)).is_some());
    }

    #[test]
    fn inline_key_is_not_in_debug_output() {
        let s = PskKeySource::Inline(Secret::new("c0ffee"));
        assert!(!format!("{s:?}").contains("c0ffee"));
    }
}
