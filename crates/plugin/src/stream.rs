//! The byte stream each layer of a connection stacks on (TCP, a proxy's tunnel, TLS with rustls
//! or with a pre-shared key, WebSocket): its own module, so that the layers use it without
//! importing each other.

use tokio::io::{AsyncRead, AsyncWrite};

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
