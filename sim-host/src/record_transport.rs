//! TLS and WebSocket for `sim-host record`, as a line has them (`tls`, `tls_ca_file`,
//! `tls_client_cert_file`, `tls_client_key_file`, `transport`, `ws_path`).
//!
//! The workspace builds rumqttc without its TLS and WebSocket features: the core uses only its
//! codec, and enabling them would unify into every build (aws-lc or a second rustls-webpki, a
//! second tungstenite). Instead the recorder's rumqttc client talks to a Unix socket in a private
//! directory, and this relay opens the secured connection to the broker with the same crates the
//! plugin already builds (tokio-rustls with ring, tokio-tungstenite) and moves the bytes between
//! the two. The MQTT session is rumqttc's as before; only the byte stream differs.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::runner::AppError;

/// How the recorder reaches the broker beyond plain TCP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    pub tls: bool,
    pub websocket: bool,
    pub ws_path: String,
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

impl Security {
    /// Plain TCP: rumqttc connects to the broker itself.
    pub fn is_plain(&self) -> bool {
        !self.tls && !self.websocket
    }

    /// The settings' own contradictions, named as the line names them.
    pub fn check(&self) -> Result<(), AppError> {
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return Err(AppError::Config(
                "tls_client_cert_file and tls_client_key_file go together: give both or neither"
                    .into(),
            ));
        }
        if self.websocket && !self.ws_path.starts_with('/') {
            return Err(AppError::Config(format!(
                "ws_path '{}' must start with '/'",
                self.ws_path.escape_debug()
            )));
        }
        Ok(())
    }
}

/// `tcp`, `websocket` (`ws`, `websockets`) in any case, as the line reads `transport`.
pub fn parse_transport(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "tcp" => Some(false),
        "websocket" | "ws" | "websockets" => Some(true),
        _ => None,
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The running relay: a socket path rumqttc connects to; removed with the relay.
pub struct Relay {
    dir: PathBuf,
    socket: PathBuf,
    last_error: Arc<Mutex<Option<String>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Relay {
    /// Reads the TLS files (a bad file is named before anything connects), opens the first
    /// connection to the broker, and listens. The first connection is made here, before rumqttc
    /// asks for it, because rumqttc's synchronous client gives up a connection attempt that is
    /// still waiting for CONNACK when its receive times out (record.rs waits in short turns);
    /// a TLS or WebSocket handshake is slower than that turn. It also makes a refused
    /// certificate an immediate error with the reason.
    pub fn start(host: &str, port: u16, security: &Security) -> Result<Relay, AppError> {
        security.check()?;
        let tls = if security.tls {
            Some(Arc::new(tls_config(security).map_err(AppError::Config)?))
        } else {
            None
        };
        let dir = private_dir().map_err(|e| {
            AppError::Fatal(format!("cannot create the relay's private directory: {e}"))
        })?;
        let socket = dir.join("broker.sock");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("record-relay")
            .enable_all()
            .build()
            .map_err(|e| AppError::Fatal(format!("cannot start the relay: {e}")))?;
        let listener = {
            let _guard = runtime.enter();
            UnixListener::bind(&socket).map_err(|e| {
                AppError::Fatal(format!("cannot listen on {}: {e}", socket.display()))
            })?
        };
        let last_error = Arc::new(Mutex::new(None));
        let upstream = Arc::new(Upstream {
            host: host.to_string(),
            port,
            tls,
            websocket: security.websocket.then(|| security.ws_path.clone()),
        });
        let first = runtime
            .block_on(async {
                tokio::time::timeout(FIRST_CONNECT_TIMEOUT, upstream.connect())
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "no TLS/WebSocket connection to {host}:{port} within {} s",
                            FIRST_CONNECT_TIMEOUT.as_secs()
                        ))
                    })
            })
            .map_err(|e| AppError::Fatal(format!("the connection to {host}:{port} failed: {e}")))?;
        runtime.spawn(serve(listener, upstream, Some(first), last_error.clone()));
        Ok(Relay {
            dir,
            socket,
            last_error,
            runtime: Some(runtime),
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Why the last connection to the broker failed (TLS or WebSocket handshake), if it did:
    /// rumqttc only sees its socket closed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A directory only this user can enter: the socket carries the client certificate's identity.
fn private_dir() -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for n in 0..100u32 {
        let dir = base.join(format!("sim-host-record-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free directory name"))
}

struct Upstream {
    host: String,
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    /// The WebSocket path, when the transport is a WebSocket.
    websocket: Option<String>,
}

enum Remote {
    Stream(Box<dyn Io>),
    WebSocket(Box<tokio_tungstenite::WebSocketStream<Box<dyn Io>>>),
}

impl Upstream {
    async fn connect(&self) -> Result<Remote, String> {
        let addr = format!("{}:{}", self.host, self.port);
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = match &self.tls {
            Some(config) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|e| {
                    format!(
                        "'{}' cannot be checked against a certificate: {e}",
                        self.host
                    )
                })?;
                let tls = TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {addr} failed: {e}"))?;
                Box::new(tls)
            }
            None => Box::new(tcp),
        };
        let Some(path) = &self.websocket else {
            return Ok(Remote::Stream(stream));
        };
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let url = format!("{scheme}://{addr}{path}");
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
        Ok(Remote::WebSocket(Box::new(ws)))
    }
}

/// How long the first connection (TCP, TLS and WebSocket handshakes) may take.
const FIRST_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts rumqttc's connections: the first gets the connection opened at start, later ones
/// (rumqttc reconnecting) a new one.
async fn serve(
    listener: UnixListener,
    upstream: Arc<Upstream>,
    mut first: Option<Remote>,
    last_error: Arc<Mutex<Option<String>>>,
) {
    while let Ok((local, _)) = listener.accept().await {
        let upstream = upstream.clone();
        let last_error = last_error.clone();
        let ready = first.take();
        tokio::spawn(async move {
            let remote = match ready {
                Some(r) => Ok(r),
                None => upstream.connect().await,
            };
            match remote {
                Ok(remote) => {
                    if let Ok(mut e) = last_error.lock() {
                        *e = None;
                    }
                    pump(local, remote).await;
                }
                Err(e) => {
                    tracing::debug!("record relay: {e}");
                    if let Ok(mut slot) = last_error.lock() {
                        *slot = Some(e);
                    }
                }
            }
        });
    }
}

/// Moves bytes both ways until either side closes.
async fn pump(mut local: UnixStream, remote: Remote) {
    match remote {
        Remote::Stream(mut s) => {
            let _ = tokio::io::copy_bidirectional(&mut local, &mut s).await;
            let _ = s.shutdown().await;
        }
        Remote::WebSocket(mut ws) => {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                tokio::select! {
                    n = local.read(&mut buf) => match n {
                        Ok(0) => { tracing::debug!("record relay: the client closed"); break }
                        Err(e) => { tracing::debug!("record relay: reading the client: {e}"); break }
                        Ok(n) => {
                            if let Err(e) = ws.send(WsMessage::Binary(buf[..n].to_vec().into())).await {
                                tracing::debug!("record relay: sending to the broker: {e}");
                                break;
                            }
                        }
                    },
                    m = ws.next() => match m {
                        None | Some(Ok(WsMessage::Close(_))) => { tracing::debug!("record relay: the broker closed"); break }
                        Some(Err(e)) => { tracing::debug!("record relay: reading the broker: {e}"); break }
                        Some(Ok(WsMessage::Binary(data))) => {
                            if let Err(e) = local.write_all(&data).await {
                                tracing::debug!("record relay: writing to the client: {e}");
                                break;
                            }
                        }
                        // Pings are answered by tungstenite; MQTT sends no text frames.
                        Some(Ok(_)) => {}
                    },
                }
            }
            let _ = SinkExt::close(ws.as_mut()).await;
        }
    }
}

fn tls_config(s: &Security) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match &s.ca_file {
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no system CA certificates found; set tls_ca_file".into());
            }
        }
        Some(path) => {
            let param = format!("tls_ca_file '{}'", path.display());
            for cert in read_chain(&param, path)? {
                roots.add(cert).map_err(|e| format!("{param}: {e}"))?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots);
    let (Some(cert), Some(key)) = (&s.client_cert_file, &s.client_key_file) else {
        return Ok(builder.with_no_client_auth());
    };
    let cert_param = format!("tls_client_cert_file '{}'", cert.display());
    let key_param = format!("tls_client_key_file '{}'", key.display());
    let chain = read_chain(&cert_param, cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{key_param} holds no usable private key: {e}"))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| format!("{key_param} holds a private key that cannot sign: {e}"))?;
    // Like the line, the pair is not checked here (rustls' check reads only X.509 v3, and
    // mosquitto's recipe makes v1 client certificates); the broker decides.
    let certified = Arc::new(CertifiedKey::new(chain, signing_key));
    Ok(builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified))))
}

fn read_chain(param: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{param} cannot be read: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{param} holds no readable certificate: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{param} holds no certificate"));
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_are_read_as_the_line_reads_them() {
        for (text, ws) in [
            ("tcp", Some(false)),
            ("WebSocket", Some(true)),
            ("ws", Some(true)),
            ("websockets", Some(true)),
            ("quic", None),
        ] {
            assert_eq!(parse_transport(text), ws, "{text}");
        }
    }

    #[test]
    fn half_a_client_certificate_and_a_bad_path_are_refused() {
        let s = Security {
            tls: true,
            client_cert_file: Some("c.crt".into()),
            ..Security::default()
        };
        assert!(s.check().unwrap_err().to_string().contains("go together"));
        let s = Security {
            websocket: true,
            ws_path: "mqtt".into(),
            ..Security::default()
        };
        assert!(s.check().unwrap_err().to_string().contains("'mqtt'"));
        let s = Security {
            tls: true,
            ca_file: Some("/nonexistent/ca.crt".into()),
            ..Security::default()
        };
        let e = tls_config(&s).unwrap_err();
        assert!(
            e.contains("tls_ca_file '/nonexistent/ca.crt' cannot be read"),
            "{e}"
        );
    }
}
