//! TLS with a pre-shared key, through the system's OpenSSL: rustls has no client support for
//! external PSKs (docs/decisions.md), so only lines with `tls_psk_identity` take this path.
//!
//! TLS 1.3 (the PSK as an external PSK) and TLS 1.2 (the PSK cipher suites, with ephemeral
//! (EC)DH first) are offered; no certificates are exchanged, the key authenticates both sides.
//! The key is read where the configuration says at every attempt and never logged.

use std::pin::Pin;

use mqtt_line_core::{decode_psk_key, PskKeySource};
use openssl::error::ErrorStack;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use tokio_openssl::SslStream;

use crate::stream::Io;

/// TLS 1.2 suites: PSK with ephemeral (EC)DH first, plain PSK after; never RSA-PSK (it needs a
/// server certificate), NULL encryption or SHA-1.
const TLS12_PSK_CIPHERS: &str = "ECDHEPSK:DHEPSK:PSK:!kRSAPSK:!eNULL:!SHA1";

/// The key bytes for the next handshake, read now from where the configuration says. Errors name
/// the parameter and the variable or path, never the key.
pub(crate) fn resolve_key(source: &PskKeySource) -> Result<Vec<u8>, String> {
    match source {
        PskKeySource::Inline(hex) => {
            decode_psk_key(hex.expose()).map_err(|e| format!("tls_psk_key: {e}"))
        }
        PskKeySource::Env(name) => {
            let text = std::env::var(name).map_err(|_| {
                format!("tls_psk_key_env: environment variable '{name}' is not set")
            })?;
            decode_psk_key(&text)
                .map_err(|e| format!("tls_psk_key_env: environment variable '{name}': {e}"))
        }
        PskKeySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("tls_psk_key_file '{path}' cannot be read: {e}"))?;
            decode_psk_key(&text).map_err(|e| format!("tls_psk_key_file '{path}': {e}"))
        }
    }
}

/// Runs the TLS-PSK handshake over `stream` (TCP, or a proxy's tunnel).
pub(crate) async fn connect(
    stream: Box<dyn Io>,
    host: &str,
    addr: &str,
    identity: &str,
    key: Vec<u8>,
) -> Result<Box<dyn Io>, String> {
    let setup = |e: ErrorStack| format!("TLS-PSK set-up failed: {e}");
    let connector = connector(identity.as_bytes().to_vec(), key).map_err(setup)?;
    let ssl = connector
        .configure()
        .and_then(|c| {
            c.verify_hostname(false)
                .use_server_name_indication(false)
                .into_ssl(host)
        })
        .map_err(setup)?;
    let mut tls = SslStream::new(ssl, stream).map_err(setup)?;
    Pin::new(&mut tls).connect().await.map_err(|e| {
        let text = describe(&e);
        format!(
            "TLS-PSK handshake with {addr} failed: {}{}",
            mqtt_line_core::escape(&text),
            refusal_hint(&text, identity)
        )
    })?;
    Ok(Box::new(tls))
}

fn connector(identity: Vec<u8>, key: Vec<u8>) -> Result<SslConnector, ErrorStack> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    builder.set_cipher_list(TLS12_PSK_CIPHERS)?;
    // No certificates with PSK: the key is what authenticates the broker.
    builder.set_verify(SslVerifyMode::NONE);
    builder.set_psk_client_callback(move |_ssl, _hint, identity_out, key_out| {
        // The identity goes out NUL-terminated; both lengths were checked with the configuration.
        if identity.len() >= identity_out.len() || key.len() > key_out.len() {
            return Err(ErrorStack::get());
        }
        identity_out[..identity.len()].copy_from_slice(&identity);
        identity_out[identity.len()] = 0;
        key_out[..key.len()].copy_from_slice(&key);
        Ok(key.len())
    });
    Ok(builder.build())
}

/// OpenSSL's reasons (`sslv3 alert illegal parameter`), without its codes and source file names;
/// the whole text when there are none (an IO error).
fn describe(e: &openssl::ssl::Error) -> String {
    let reasons: Vec<&str> = e
        .ssl_error()
        .map(|stack| stack.errors().iter().filter_map(|r| r.reason()).collect())
        .unwrap_or_default();
    if reasons.is_empty() {
        e.to_string()
    } else {
        reasons.join("; ")
    }
}

/// OpenSSL names a refused key by the TLS alert the broker sent; the sentence says what that
/// means for the line's parameters.
fn refusal_hint(text: &str, identity: &str) -> String {
    let identity = mqtt_line_core::escape(identity);
    // TLS 1.3: the broker cannot verify the binder made with our key (mosquitto answers
    // "illegal parameter"); TLS 1.2: the Finished message does not decrypt.
    if [
        "illegal parameter",
        "decrypt error",
        "bad record mac",
        "unknown psk identity",
    ]
    .iter()
    .any(|alert| text.contains(alert))
    {
        format!(
            " (the broker refused the pre-shared key for identity '{identity}': it holds another \
             key for this identity, or does not know the identity)"
        )
    } else if [
        "handshake failure",
        "no shared cipher",
        "wrong version number",
    ]
    .iter()
    .any(|alert| text.contains(alert))
    {
        format!(
            " (the broker's listener does not accept TLS-PSK for identity '{identity}': check \
             that it has a PSK set-up (mosquitto: psk_hint and psk_file) and knows this identity)"
        )
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_get_a_sentence() {
        let rows: &[(&str, &str)] = &[
            (
                "error:0A000419:SSL routines::tlsv1 alert decrypt error",
                "refused the pre-shared key",
            ),
            (
                "ssl3_read_bytes:tlsv1 alert unknown psk identity",
                "refused the pre-shared key",
            ),
            (
                "sslv3 alert illegal parameter",
                "refused the pre-shared key",
            ),
            ("sslv3 alert handshake failure", "does not accept TLS-PSK"),
            ("connection reset", ""),
        ];
        for (text, want) in rows {
            let hint = refusal_hint(text, "id");
            assert!(hint.contains(want), "{text}: {hint}");
            assert_eq!(hint.is_empty(), want.is_empty(), "{text}: {hint}");
        }
    }

    #[test]
    fn keys_are_resolved_without_showing_them() {
        let inline = PskKeySource::Inline(mqtt_line_core::Secret::new("c0ffee"));
        assert_eq!(resolve_key(&inline), Ok(vec![0xc0, 0xff, 0xee]));
        let unset = PskKeySource::Env("MQTT_LINE_PSK_TEST_UNSET".into());
        assert!(resolve_key(&unset).is_err_and(|e| e.contains("is not set")));
        let dir = std::env::temp_dir().join(format!("mqtt-line-psk-{}", std::process::id()));
        std::fs::write(&dir, "nothex-s3cr3t\n").unwrap();
        let file = PskKeySource::File(dir.display().to_string());
        let err = resolve_key(&file).unwrap_err();
        let _ = std::fs::remove_file(&dir);
        assert!(
            err.contains("tls_psk_key_file") && err.contains("not hexadecimal"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"), "{err}");
        let missing = PskKeySource::File("/nonexistent/mqtt-line-psk".into());
        assert!(resolve_key(&missing).is_err_and(|e| e.contains("cannot be read")));
    }
}
