//! The byte stream to the broker: plain TCP, TLS (rustls; OpenSSL for TLS-PSK, psk.rs), or a
//! WebSocket over either; directly or through the line's proxy (proxy.rs).
//!
//! The driver never reads and writes at the same moment, so one object serves both directions;
//! `read` is cancel-safe, as the driver's `select!` requires.

mod tls_files;

use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use mqtt_line_core::Secret;
use mqtt_line_core::{Auth, LineConfig, PasswordSource, Transport as Kind};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::sign::SingleCertAndKey;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub use crate::stream::Io;

pub enum Transport {
    Stream(Box<dyn Io>),
    WebSocket(Box<WebSocketStream<Box<dyn Io>>>),
}

impl Transport {
    /// Opens the transport the configuration asks for. Errors name the step that failed.
    pub async fn connect(cfg: &LineConfig, host: &str, port: u16) -> Result<Transport, String> {
        let addr = mqtt_line_core::host_port(host, port);
        // Read before connecting: a missing key file fails the attempt without a handshake.
        let psk_key = match &cfg.tls_psk_key {
            Some(source) if cfg.tls => Some(crate::psk::resolve_key(source)?),
            _ => None,
        };
        let tcp = match &cfg.proxy {
            Some(proxy) => crate::proxy::open(proxy, host, port).await?,
            None => TcpStream::connect((host, port))
                .await
                .map_err(|e| format!("cannot connect to {addr}: {e}"))?,
        };
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = if let Some(key) = psk_key {
            crate::psk::connect(Box::new(tcp), host, &addr, &cfg.tls_psk_identity, key).await?
        } else if cfg.tls {
            let connector = TlsConnector::from(Arc::new(tls_config(cfg)?));
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| format!("'{host}' cannot be checked against a certificate: {e}"))?;
            let tls = connector.connect(name, tcp).await.map_err(|e| {
                format!(
                    "TLS handshake with {addr} failed: {e}{}",
                    handshake_hint(&e)
                )
            })?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        match cfg.transport {
            Kind::Tcp => Ok(Transport::Stream(stream)),
            Kind::WebSocket => {
                let scheme = if cfg.tls { "wss" } else { "ws" };
                let url = format!("{scheme}://{addr}{}", cfg.ws_path);
                let mut request = url
                    .as_str()
                    .into_client_request()
                    .map_err(|e| format!("bad WebSocket address {url}: {e}"))?;
                request
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
                let (ws, _) = tokio_tungstenite::client_async(request, stream)
                    .await
                    .map_err(|e| format!("WebSocket handshake with {url} failed: {e}"))?;
                Ok(Transport::WebSocket(Box::new(ws)))
            }
        }
    }

    /// Appends received bytes to `buf`; 0 means the broker closed the connection.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Transport::Stream(s) => s.read_buf(buf).await,
            Transport::WebSocket(ws) => loop {
                match ws.next().await {
                    None | Some(Ok(Message::Close(_))) => return Ok(0),
                    Some(Ok(Message::Binary(data))) => {
                        buf.extend_from_slice(&data);
                        if !data.is_empty() {
                            return Ok(data.len());
                        }
                    }
                    // Pings are answered by the WebSocket layer; MQTT never sends text.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(io::Error::other(e)),
                }
            },
        }
    }

    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Transport::Stream(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Transport::WebSocket(ws) => ws
                .send(Message::Binary(data.to_vec().into()))
                .await
                .map_err(io::Error::other),
        }
    }

    /// Closes the connection politely (TLS close_notify, WebSocket close frame).
    pub async fn close(&mut self) {
        match self {
            Transport::Stream(s) => {
                let _ = s.shutdown().await;
            }
            Transport::WebSocket(ws) => {
                let _ = SinkExt::close(ws.as_mut()).await;
            }
        }
    }
}

fn tls_config(cfg: &LineConfig) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    if cfg.tls_ca_file.is_empty() {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err("no system CA certificates found; set tls_ca_file".into());
        }
    } else {
        let param = format!("tls_ca_file '{}'", cfg.tls_ca_file);
        for cert in tls_files::read_chain(&param, &cfg.tls_ca_file)? {
            roots.add(cert).map_err(|e| format!("{param}: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots);
    if cfg.tls_client_cert_file.is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let certified = tls_files::load(
        &cfg.tls_client_cert_file,
        &cfg.tls_client_key_file,
        &provider,
    )?;
    Ok(builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified))))
}

/// rustls names some refusals of the broker's certificate after webpki's internals; the one
/// met by following mosquitto's openssl recipe for the server gets a sentence saying what to do.
fn handshake_hint(e: &io::Error) -> &'static str {
    if e.to_string().contains("UnsupportedCertVersion") {
        " (the broker's certificate is X.509 version 1, without extensions; the line checks the \
         broker's name against the subjectAltName extension of a version 3 certificate: sign the \
         broker's request with an extensions file that gives subjectAltName)"
    } else {
        ""
    }
}

/// The password for the next CONNECT, read now from where the configuration says.
pub fn resolve_password(source: &PasswordSource) -> Result<Secret, String> {
    resolve_secret(source, "password")
}

/// The secret CONNECT is made with, read now: the password, or with `auth = azure-sas` the
/// device key that signs the token (the core builds the token from it).
pub fn resolve_credentials(config: &LineConfig) -> Result<Secret, String> {
    match (&config.auth, &config.sas_key) {
        (Auth::AzureSas, Some(key)) => resolve_secret(key, "sas_key"),
        (Auth::AzureSas, None) => Err("auth = azure-sas but no SAS key is configured".into()),
        (Auth::Password, _) => resolve_password(&config.password),
    }
}

/// A secret from its source; `param` (`password`, `sas_key`) names the parameters in messages.
fn resolve_secret(source: &PasswordSource, param: &str) -> Result<Secret, String> {
    match source {
        PasswordSource::Inline(s) => Ok(s.clone()),
        PasswordSource::Env(name) => std::env::var(name)
            .map(Secret::new)
            .map_err(|_| format!("{param}_env: environment variable '{name}' is not set")),
        PasswordSource::File(path) => std::fs::read_to_string(path)
            .map(|s| Secret::new(s.trim_end_matches(['\r', '\n'])))
            .map_err(|e| format!("{param}_file '{path}' cannot be read: {e}")),
    }
}
