//! The two bounds on a connection's reads, as Go's `net/http` sets them (`IdleTimeout`,
//! `ReadHeaderTimeout`):
//! - a connection that sends nothing for the idle timeout is closed, whatever state it is in: an
//!   HTTP/1.1 keep-alive connection between requests, an HTTP/2 connection with no streams, or one
//!   whose HEADERS frame never completes (HTTP/2 forbids any other frame until it does, so such a
//!   client is silent);
//! - an HTTP/1.1 request's headers must be complete within the header read timeout of its first
//!   byte (of the connection's start, for the first request), however slowly they trickle in.
//!
//! hyper has one timeout for both of the HTTP/1.1 waits, so an idle keep-alive connection was
//! closed after the header read timeout (hyperium/hyper#3828). The API server calls webhooks over
//! HTTP/1.1 (the end-to-end test shows it) and keeps idle connections for the next Pod: closing
//! them seconds after each burst made it dial again, and race each close with a request that Go
//! does not retry, a POST. So hyper's is off, and the header read timeout is kept here, from what
//! the reads see and what [`Exchange`] is told when hyper has the headers.
//!
//! Left as it is: a pipelined request whose first bytes came while the one before it was being
//! answered (hyper holds them; no read sees them start) gets no header read timeout, only the idle
//! timeout. That gives a client nothing a silent keep-alive connection does not: both are closed
//! after the idle timeout, and both count against the per-client connection limit. Telling those
//! bytes from the end of the body before them would take parsing HTTP here.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where a connection's HTTP/1.1 exchange is, shared by its reads and the service hyper calls.
pub struct Exchange(AtomicU8);

/// Reading a request's headers: the header read timeout runs.
const HEADERS: u8 = 0;
/// hyper has the headers: the request is being answered.
const ANSWERING: u8 = 1;
/// Answered; the next byte read starts the next request's headers.
const BETWEEN: u8 = 2;
/// An HTTP/2 connection: streams come and go at once; only the idle timeout applies.
const HTTP2: u8 = 3;

impl Exchange {
    /// A new connection's: its first request's header read timeout runs from the start.
    pub fn new() -> Arc<Self> {
        Arc::new(Exchange(AtomicU8::new(HEADERS)))
    }

    /// hyper has read a request's headers and calls the service.
    pub fn answering(&self) {
        self.set(ANSWERING);
    }

    /// The service has given hyper its response.
    pub fn answered(&self) {
        self.set(BETWEEN);
    }

    /// The connection began with HTTP/2's preface.
    fn http2(&self) {
        self.0.store(HTTP2, Ordering::Relaxed);
    }

    /// Bytes arrived: when they are the first of a request, its header read timeout starts (true).
    fn bytes_arrived(&self) -> bool {
        self.0.compare_exchange(BETWEEN, HEADERS, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    fn reading_headers(&self) -> bool {
        self.0.load(Ordering::Relaxed) == HEADERS
    }

    fn set(&self, state: u8) {
        let _ =
            self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| (now != HTTP2).then_some(state));
    }
}

/// What starts an HTTP/2 connection (RFC 9113, 3.4), which hyper looks for as well.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// `io`, failing its reads once nothing has been read for `idle`, or once an HTTP/1.1 request's
/// headers have taken `header` since its first byte.
pub struct Timeouts<T> {
    io: T,
    idle: Duration,
    idle_deadline: Pin<Box<Sleep>>,
    header: Duration,
    header_deadline: Pin<Box<Sleep>>,
    exchange: Arc<Exchange>,
    /// How much of [`PREFACE`] the connection's first bytes have matched; `None` once decided.
    preface: Option<usize>,
}

impl<T> Timeouts<T> {
    pub fn new(io: T, idle: Duration, header: Duration, exchange: Arc<Exchange>) -> Self {
        Timeouts {
            io,
            idle,
            idle_deadline: Box::pin(tokio::time::sleep(idle)),
            header,
            header_deadline: Box::pin(tokio::time::sleep(header)),
            exchange,
            preface: Some(0),
        }
    }

    fn bytes_read(&mut self, read: &[u8]) {
        let now = Instant::now();
        self.idle_deadline.as_mut().reset(now + self.idle);
        if let Some(matched) = self.preface {
            let more = read.len().min(PREFACE.len() - matched);
            self.preface = if read[..more] != PREFACE[matched..matched + more] {
                None
            } else if matched + more == PREFACE.len() {
                self.exchange.http2();
                None
            } else {
                Some(matched + more)
            };
        }
        if self.exchange.bytes_arrived() {
            self.header_deadline.as_mut().reset(now + self.header);
        }
    }

    fn timed_out(&mut self, cx: &mut Context<'_>) -> Option<&'static str> {
        if self.idle_deadline.as_mut().poll(cx).is_ready() {
            return Some("idle timeout");
        }
        (self.exchange.reading_headers() && self.header_deadline.as_mut().poll(cx).is_ready())
            .then_some("header read timeout")
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Timeouts<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.bytes_read(&buf.filled()[before..]);
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.timed_out(cx) {
                Some(which) => Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, which))),
                None => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Timeouts<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
