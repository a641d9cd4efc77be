//! Azure IoT Hub shared access signatures (`auth = azure-sas`): the user name and the SAS token a
//! device sends as its password in CONNECT, and when a token is renewed.
//!
//! The key comes in resolved (the shell reads `sas_key_file` or `sas_key_env` at each attempt, as
//! it does the password) and the wall time comes in as a parameter, so the token is a pure
//! function of its inputs and the renewal a deadline on the line's clock (docs/security.md).

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::params::Secret;

/// The IoT Hub MQTT API version the user name names.
pub const API_VERSION: &str = "2021-04-12";

/// The shortest and longest `sas_ttl` accepted: ten seconds (tests, very cautious sites) to a
/// year (beyond that a leaked token is worth too much).
pub const MIN_TTL_SECS: u64 = 10;
pub const MAX_TTL_SECS: u64 = 365 * 86_400;

/// One hour, as Azure's own device SDKs default to.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// Why a SAS key cannot sign. The key's text is never part of the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasKeyError {
    #[error("the SAS key is empty")]
    Empty,
    /// No detail of the decoder: it would quote a character of the key.
    #[error(
        "the SAS key is not base64 (expected the device's primary or secondary key as the \
         portal shows it)"
    )]
    NotBase64,
}

/// The device's symmetric key as IoT Hub shows it (base64) to the bytes that sign.
pub fn decode_key(key: &str) -> Result<Vec<u8>, SasKeyError> {
    let key = key.trim();
    if key.is_empty() {
        return Err(SasKeyError::Empty);
    }
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| SasKeyError::NotBase64)
}

/// The CONNECT user name IoT Hub expects of device `device_id` on hub `host`.
pub fn user_name(host: &str, device_id: &str) -> String {
    format!("{host}/{device_id}/?api-version={API_VERSION}")
}

/// The SAS token of device `device_id` on hub `host`, valid until `expiry` (Unix seconds):
/// `SharedAccessSignature sr={resource}&sig={signature}&se={expiry}`, where the resource is the
/// URL-encoded `{host}/devices/{device_id}` and the signature the URL-encoded base64 of the
/// HMAC-SHA256, keyed with the decoded key, of the resource, a line feed and the expiry.
pub fn token(host: &str, device_id: &str, key: &[u8], expiry: u64) -> Secret {
    let resource = url_encode(&format!("{host}/devices/{device_id}"));
    let signed = format!("{resource}\n{expiry}");
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let signature = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(signed.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    Secret::new(format!(
        "SharedAccessSignature sr={resource}&sig={}&se={expiry}",
        url_encode(&signature)
    ))
}

/// The expiry (Unix seconds) of a token made at `wall_ns` that lives `ttl`.
pub fn expiry(wall_ns: i64, ttl: Duration) -> u64 {
    let now_s = u64::try_from(wall_ns.div_euclid(1_000_000_000)).unwrap_or(0);
    now_s.saturating_add(ttl.as_secs())
}

/// How long after a token was made the line reconnects with a fresh one: after four fifths of
/// its life, so that a slow reconnect (a back-off, a busy hub) still happens while the old token
/// is valid and the connection never meets IoT Hub's own disconnect at expiry.
pub fn renew_after(ttl: Duration) -> Duration {
    ttl - ttl / 5
}

/// Percent-encoding of everything but the unreserved characters (RFC 3986: letters, digits,
/// `-._~`), with upper-case hex, as the token's `sr` and `sig` need.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independently computed with the algorithm of Azure's "Control access to IoT Hub with
    /// SAS" page (its Python example: `quote_plus` of the resource, HMAC-SHA256 with the
    /// base64-decoded key over resource, `\n`, expiry; `urlencode` of sr, sig, se).
    #[test]
    fn token_matches_the_documented_algorithm() {
        let key = decode_key("q+DKVojmMz014RjAwpNGZbAkdOocSVWMKPOccLfUmLE=").unwrap();
        let cases = [
            (
                "myhub.azure-devices.net",
                "MyDevice01",
                1_700_000_000,
                "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2FMyDevice01\
                 &sig=ELvzUZ224e%2FhuNizHNjdGWGE7ji%2FN6ecc4GZaRsxrKo%3D&se=1700000000",
            ),
            (
                "sdktesthub.private.azure-devices-int.net",
                "test8",
                1_462_333_672,
                "SharedAccessSignature sr=sdktesthub.private.azure-devices-int.net%2Fdevices\
                 %2Ftest8&sig=lD2oyxIUEnddGjtK681VzLWY0QcjSHzYvLkPr3q%2BPd8%3D&se=1462333672",
            ),
        ];
        for (host, device, expiry, want) in cases {
            assert_eq!(token(host, device, &key, expiry).expose(), want, "{device}");
        }
        assert_eq!(
            user_name("myhub.azure-devices.net", "MyDevice01"),
            "myhub.azure-devices.net/MyDevice01/?api-version=2021-04-12"
        );
    }

    #[test]
    fn url_encoding_keeps_only_unreserved() {
        for (raw, want) in [
            ("a/b", "a%2Fb"),
            ("x+y=", "x%2By%3D"),
            ("dev-1_2.3~", "dev-1_2.3~"),
            ("é", "%C3%A9"),
            (" ", "%20"),
        ] {
            assert_eq!(url_encode(raw), want, "{raw}");
        }
    }

    #[test]
    fn keys_expiry_and_renewal() {
        assert_eq!(decode_key(" "), Err(SasKeyError::Empty));
        let err = decode_key("not*base64!").unwrap_err().to_string();
        assert!(
            err.contains("not base64") && !err.contains("not*base64!"),
            "{err}"
        );
        assert_eq!(decode_key("AAEC").unwrap(), [0, 1, 2]);
        assert_eq!(
            expiry(1_700_000_000_999_999_999, DEFAULT_TTL),
            1_700_003_600
        );
        assert_eq!(expiry(-5, Duration::from_secs(60)), 60);
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(2880)
        );
        assert_eq!(renew_after(Duration::from_secs(10)), Duration::from_secs(8));
    }
}
