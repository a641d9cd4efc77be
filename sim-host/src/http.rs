//! The `--http` server: the live page, its update stream, `/metrics` and `/api/*`.
//!
//! It runs on its own thread with a single-threaded tokio runtime and never touches the line:
//! every answer is asked of the main loop through a [`Query`] (the loop owns the line and its
//! view), which replies between event batches. Live updates come from the main loop through a
//! broadcast channel ([`Updates`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::{broadcast, oneshot};

use crate::metrics;
use crate::slow_client::{self, Guarded, SlowClients};
use crate::wake::Waker;

/// Live updates as the page receives them (JSON text).
pub type Update = Arc<str>;
pub type Updates = broadcast::Sender<Update>;

/// How many updates a slow page may fall behind before its stream is closed (its browser then
/// reconnects and starts again from a snapshot).
const UPDATES_BUFFERED: usize = 16;

/// An answer or why there is none.
pub type Reply = oneshot::Sender<Result<String, String>>;

/// What the server asks of the main loop.
pub enum Query {
    Status(Reply),
    Values(Reply),
    Stats(Reply),
    Metrics(Reply),
    /// The page's snapshot, and the updates after it (subscribed at the same moment, so none
    /// is missed or applied twice).
    Subscribe(oneshot::Sender<(String, broadcast::Receiver<Update>)>),
}

struct AppState {
    queries: Sender<Query>,
    waker: Arc<Waker>,
}

/// The running server.
pub struct HttpServer {
    /// Where it listens (the port chosen when 0 was asked for).
    pub address: SocketAddr,
    pub updates: Updates,
    /// Connections closed because their client did not take its data.
    pub slow_clients: Arc<SlowClients>,
}

impl HttpServer {
    /// The server's own counters in the Prometheus text format, after the line's in `/metrics`.
    pub fn metrics_text(&self) -> String {
        format!(
            "# HELP sim_host_http_slow_clients_closed_total Connections of the --http server \
             closed because their client took no data for {} s.\n\
             # TYPE sim_host_http_slow_clients_closed_total counter\n\
             sim_host_http_slow_clients_closed_total {}\n",
            slow_client::STALL_LIMIT.as_secs(),
            self.slow_clients.count()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("--http {address}: cannot listen: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("--http {address}: cannot start the server: {source}")]
    Start {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// Binds `address` (only there) and serves on a thread of its own until the process ends.
pub fn start(
    address: SocketAddr,
    queries: Sender<Query>,
    waker: Arc<Waker>,
) -> Result<HttpServer, HttpError> {
    let start_error = |source| HttpError::Start { address, source };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(start_error)?;
    let listener = {
        let _inside = runtime.enter();
        listen(address).map_err(|source| HttpError::Bind { address, source })?
    };
    let bound = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { address, source })?;
    let (updates, _) = broadcast::channel(UPDATES_BUFFERED);
    let slow_clients = Arc::new(SlowClients::default());
    let app = router(Arc::new(AppState { queries, waker }));
    let closed = slow_clients.clone();
    thread::Builder::new()
        .name("http".into())
        .spawn(move || runtime.block_on(serve(listener, app, closed)))
        .map_err(start_error)?;
    Ok(HttpServer {
        address: bound,
        updates,
        slow_clients,
    })
}

/// A listening socket whose connections inherit the bounded send buffer.
fn listen(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(slow_client::SEND_BUFFER)?;
    socket.bind(address)?;
    socket.listen(1024)
}

/// Accepts connections and serves each on its own task, behind a [`Guarded`] stream: a client
/// that takes no data for the stall limit loses its connection. HTTP/1.1 only, as before.
async fn serve(listener: tokio::net::TcpListener, app: Router, closed: Arc<SlowClients>) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Too many open files and the like: wait a little instead of spinning.
                tracing::warn!("http server: cannot accept a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Guarded::new(
            stream,
            slow_client::STALL_LIMIT,
            closed.clone(),
        ));
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            // A connection's end, whatever the reason (the client left, it stalled), concerns
            // only that client.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(io, service)
                .await;
        });
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/page.js", get(page_script))
        .route("/page.css", get(page_style))
        .route("/events", get(events))
        .route("/metrics", get(metrics_text))
        .route("/api/status", get(api_status))
        .route("/api/values", get(api_values))
        .route("/api/stats", get(api_stats))
        .with_state(state)
}

const PAGE_HTML: &str = include_str!("page/index.html");
const PAGE_JS: &str = include_str!("page/page.js");
const PAGE_CSS: &str = include_str!("page/page.css");

/// The page loads only its own script and style and connects only to its own server: no inline
/// script runs, whatever a value contains.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn with_type(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn page() -> Response {
    let mut response = with_type("text/html; charset=utf-8", PAGE_HTML);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

async fn page_script() -> Response {
    with_type("text/javascript; charset=utf-8", PAGE_JS)
}

async fn page_style() -> Response {
    with_type("text/css; charset=utf-8", PAGE_CSS)
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the line is shutting down\n",
    )
        .into_response()
}

/// Asks the main loop and waits for its answer.
async fn ask(
    state: &AppState,
    query: impl FnOnce(Reply) -> Query,
    content_type: &'static str,
) -> Response {
    let (tx, rx) = oneshot::channel();
    if state.queries.send(query(tx)).is_err() {
        return unavailable();
    }
    state.waker.wake();
    match rx.await {
        Ok(Ok(body)) => with_type(content_type, body),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(_) => unavailable(),
    }
}

const JSON: &str = "application/json";

async fn api_status(State(state): State<Arc<AppState>>) -> Response {
    ask(&state, Query::Status, JSON).await
}

async fn api_values(State(state): State<Arc<AppState>>) -> Response {
    ask(&state, Query::Values, JSON).await
}

async fn api_stats(State(state): State<Arc<AppState>>) -> Response {
    ask(&state, Query::Stats, JSON).await
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    ask(&state, Query::Metrics, metrics::CONTENT_TYPE).await
}

/// SSE data must not hold a carriage return; JSON text never does (serde escapes it), this
/// only keeps a mistake from becoming a panic.
fn sse_event(name: &'static str, data: &str) -> SseEvent {
    let event = SseEvent::default().event(name);
    if data.contains('\r') {
        event.data(data.replace('\r', ""))
    } else {
        event.data(data)
    }
}

/// `/events`: a `snapshot` event, then a `delta` event per update. A page that falls behind
/// loses its stream; EventSource reconnects and gets a new snapshot.
async fn events(
    State(state): State<Arc<AppState>>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Response> {
    let (tx, rx) = oneshot::channel();
    if state.queries.send(Query::Subscribe(tx)).is_err() {
        return Err(unavailable());
    }
    state.waker.wake();
    let (snapshot, updates) = rx.await.map_err(|_| unavailable())?;
    let first = stream::once(async move { Ok(sse_event("snapshot", &snapshot)) });
    let rest = stream::unfold(updates, |mut updates| async move {
        match updates.recv().await {
            Ok(update) => Some((Ok(sse_event("delta", &update)), updates)),
            Err(_) => None,
        }
    });
    Ok(Sse::new(first.chain(rest)).keep_alive(KeepAlive::default()))
}
