//! The TLS files of a line: the CA file, and the line's own certificate and key
//! (`tls_client_cert_file`, `tls_client_key_file`),
//! loaded so that every certificate OpenSSL-based clients accept works here too, and every one
//! that cannot work is refused with the reason.
//!
//! rustls' own loader (`with_client_auth_cert`) checks that key and certificate belong together
//! by parsing the certificate with webpki, which only knows X.509 v3. The recipe of mosquitto's
//! TLS documentation (`openssl x509 -req` without an extensions file) makes v1 certificates, and
//! rustls then reported a v1 certificate as not fitting its key. We read the few fields we need
//! ourselves ([`der`]), compare the public keys, check the validity period, and hand rustls the
//! finished `CertifiedKey`; the broker verifies the chain as before.

mod der;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::sign::CertifiedKey;

use der::{parse_certificate, CertTime};

/// Reads, checks and pairs the client certificate chain and its key. The messages name the
/// parameter, the path and what is wrong, and say what to do where there is one obvious fix.
pub(crate) fn load(
    cert_path: &str,
    key_path: &str,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let cert_param = format!("tls_client_cert_file '{cert_path}'");
    let key_param = format!("tls_client_key_file '{key_path}'");
    let chain = read_chain(&cert_param, cert_path)?;
    let Some(end_entity) = chain.first() else {
        return Err(format!("{cert_param} holds no certificate"));
    };
    let cert = parse_certificate(end_entity)
        .map_err(|e| format!("{cert_param} is not a valid X.509 certificate: {e}"))?;
    check_validity(&cert_param, &cert.not_before, &cert.not_after, now_unix())?;

    let key = read_key(&key_param, key_path)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{key_param} holds a private key the line cannot sign with: {e}"))?;
    // Keys whose public half rustls cannot tell are left to the broker's check.
    if let Some(public) = signing_key.public_key() {
        if public.as_ref() != cert.spki {
            return Err(format!(
                "{key_param} is not the private key of the certificate in {cert_param}: the \
                 certificate holds another public key"
            ));
        }
    }
    Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
}

/// The PEM certificates of a file: the line's certificate first, then intermediates.
pub(crate) fn read_chain(param: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{param} cannot be read: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{param} is not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{param} holds no certificate: {}",
            what_else(&bytes)
        ));
    }
    Ok(certs)
}

fn read_key(param: &str, path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{param} cannot be read: {e}"))?;
    if is_encrypted_key(&bytes) {
        return Err(format!(
            "{param} is encrypted with a passphrase, which the line cannot ask for; store it \
             unencrypted (`openssl pkey -in KEY -out PLAIN.key`) where only the host's account can \
             read it"
        ));
    }
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(format!(
            "{param} holds no private key: {}",
            what_else(&bytes)
        )),
        Err(e) => Err(format!("{param} has no readable private key: {e}")),
    }
}

/// A PKCS#8 `ENCRYPTED PRIVATE KEY`, or a traditional key with `Proc-Type: 4,ENCRYPTED`.
fn is_encrypted_key(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

/// What a file that lacks the expected PEM section holds instead, as far as can be told.
fn what_else(bytes: &[u8]) -> String {
    if bytes.first() == Some(&0x30) {
        return "it looks like binary DER; convert it to PEM (`openssl x509 -inform der` for a \
                certificate, `openssl pkey -inform der` for a key)"
            .into();
    }
    let text = String::from_utf8_lossy(bytes);
    let label = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"));
    match label {
        Some(label) => format!("its PEM section is a {}", label.escape_debug()),
        None if bytes.is_empty() => "the file is empty".into(),
        None => "no PEM section (-----BEGIN ...-----) found".into(),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A certificate outside its validity period would be refused by the broker with a bare alert;
/// saying so here names the date.
fn check_validity(
    param: &str,
    not_before: &CertTime,
    not_after: &CertTime,
    now: i64,
) -> Result<(), String> {
    if now > not_after.unix {
        return Err(format!(
            "{param}: the certificate expired on {not_after} (valid from {not_before})"
        ));
    }
    if now < not_before.unix {
        return Err(format!(
            "{param}: the certificate is not valid before {not_before}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_period_is_checked_with_dates_in_the_message() {
        let t = |unix, text: &str| CertTime {
            unix,
            text: text.into(),
        };
        let from = t(1_000, "A");
        let to = t(2_000, "B");
        let rows: &[(i64, Option<&str>)] = &[
            (999, Some("not valid before A")),
            (1_000, None),
            (2_000, None),
            (2_001, Some("expired on B (valid from A)")),
        ];
        for (now, want) in rows {
            let got = check_validity("p", &from, &to, *now).err();
            match want {
                None => assert_eq!(got, None, "{now}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{now}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn what_else_names_the_content() {
        let rows: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"\x30\x82\x01", "binary DER"),
            (
                b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
                "PRIVATE KEY",
            ),
            (b"hello", "no PEM section"),
        ];
        for (bytes, want) in rows {
            assert!(
                what_else(bytes).contains(want),
                "{bytes:?}: {}",
                what_else(bytes)
            );
        }
    }
}
