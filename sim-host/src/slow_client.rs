//! A connection of the `--http` server whose client must take its data. A client that stops
//! reading (a page left in a frozen tab, a script that connected to `/events` and never reads)
//! would otherwise keep its connection, and the bytes queued for it, for ever: once the socket's
//! send buffer ([`SEND_BUFFER`]) is full, a write that waits longer than [`STALL_LIMIT`] fails,
//! the server closes the connection, and [`SlowClients`] counts it. A client that reads slowly
//! but keeps reading is not affected: every byte it takes restarts the clock.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// How long a write may wait for a client that takes nothing before its connection is closed.
pub const STALL_LIMIT: Duration = Duration::from_secs(10);

/// The send buffer of each connection (the kernel doubles it for its bookkeeping): with the
/// bytes the HTTP server holds itself, what a client that does not read can pin in memory.
pub const SEND_BUFFER: u32 = 64 * 1024;

/// How many connections were closed because their client did not take its data
/// (`sim_host_http_slow_clients_closed_total` in `/metrics`).
#[derive(Debug, Default)]
pub struct SlowClients(AtomicU64);

impl SlowClients {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A TCP connection whose writes fail once they have waited [`STALL_LIMIT`] without progress.
pub struct Guarded {
    stream: TcpStream,
    limit: Duration,
    /// Running while a write waits; dropped as soon as a write makes progress.
    stalled: Option<Pin<Box<Sleep>>>,
    closed: Arc<SlowClients>,
    counted: bool,
}

impl Guarded {
    pub fn new(stream: TcpStream, limit: Duration, closed: Arc<SlowClients>) -> Guarded {
        Guarded {
            stream,
            limit,
            stalled: None,
            closed,
            counted: false,
        }
    }

    /// A write that made progress (or failed for its own reason) ends the wait; one that waits
    /// runs the clock, and fails when the client has taken nothing for the whole limit.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                if !self.counted {
                    self.counted = true;
                    self.closed.0.fetch_add(1, Ordering::Relaxed);
                }
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client took no data for {limit:?}"),
                )))
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.guard(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.guard(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_flush(cx);
        this.guard(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A peer that reads nothing: once the socket is full, the write fails after the limit and
    /// the connection is counted once; a peer that reads keeps its connection.
    #[test]
    fn a_client_that_takes_nothing_is_closed_and_counted() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let address = listener.local_addr().expect("address");
            let _client = TcpStream::connect(address).await.expect("connect");
            let (server, _) = listener.accept().await.expect("accept");
            let slow = Arc::new(SlowClients::default());
            let mut guarded = Guarded::new(server, Duration::from_millis(200), slow.clone());
            let chunk = vec![b'x'; 64 * 1024];
            // Bounded: the kernel's buffers hold a few MiB at most.
            let mut error = None;
            for _ in 0..10_000 {
                if let Err(e) = guarded.write_all(&chunk).await {
                    error = Some(e);
                    break;
                }
            }
            let error = error.expect("the writes to a client that reads nothing fail");
            assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
            assert_eq!(slow.count(), 1);
        });
    }
}
