//! The two bounds on a connection's reads, as Go's `net/http` sets them (`IdleTimeout`,
//! `ReadHeaderTimeout`):
//! - a connection that sends nothing for the idle timeout is closed, whatever state it is in: an
//!   HTTP/1.1 keep-alive connection between requests, an HTTP/2 connection with no streams, or one
//!   whose HEADERS frame never completes (HTTP/2 forbids any other frame until it does, so such a
//!   client is silent);
//! - an HTTP/1.1 request's headers must be complete within the header read timeout of its first
//!   byte (of the connection's start, for the first request), however slowly they trickle in.
//!
//! hyper has one timeout for both HTTP/1.1 waits (hyperium/hyper#3828), which would close an idle
//! keep-alive connection after the header read timeout. The API server calls webhooks over HTTP/1.1
//! and keeps idle connections for the next Pod: closing them after each burst makes it dial again,
//! and races each close with a POST that Go does not retry. So hyper's is off, and the header read
//! timeout is kept here, from what the reads see and what [`Exchange`] is told when hyper has the
//! headers.
//!
//! Left as it is: a pipelined request whose first bytes came while the one before it was being
//! answered (hyper holds them; no read sees them start) gets only the idle timeout. That gives a
//! client nothing a silent keep-alive connection does not: both are closed after the idle timeout,
//! and both count against the per-client connection limit.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where a connection's HTTP/1.1 exchange is, shared by its reads and the service hyper calls:
/// a [`Phase`], kept in an atomic because every read of the connection looks at it.
pub struct Exchange(AtomicU8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Reading a request's headers: the header read timeout runs.
    Headers,
    /// hyper has the headers: the request is being answered.
    Answering,
    /// Answered; the next byte read starts the next request's headers.
    Between,
    /// An HTTP/2 connection: streams come and go at once; only the idle timeout applies. Final.
    Http2,
}

impl Phase {
    fn of(value: u8) -> Phase {
        [Phase::Headers, Phase::Answering, Phase::Between, Phase::Http2][usize::from(value.min(3))]
    }
}

impl Exchange {
    /// A new connection's: its first request's header read timeout runs from the start.
    pub fn new() -> Arc<Self> {
        Arc::new(Exchange(AtomicU8::new(Phase::Headers as u8)))
    }

    /// hyper has read a request's headers and calls the service.
    pub fn answering(&self) {
        self.set(Phase::Answering);
    }

    /// The service has given hyper its response.
    pub fn answered(&self) {
        self.set(Phase::Between);
    }

    /// The connection began with HTTP/2's preface.
    fn http2(&self) {
        self.0.store(Phase::Http2 as u8, Ordering::Relaxed);
    }

    /// Bytes arrived: when they are the first of a request, its header read timeout starts (true).
    fn bytes_arrived(&self) -> bool {
        let (between, headers) = (Phase::Between as u8, Phase::Headers as u8);
        self.0.compare_exchange(between, headers, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    fn phase(&self) -> Phase {
        Phase::of(self.0.load(Ordering::Relaxed))
    }

    /// Moves to `phase`, unless the connection is HTTP/2.
    fn set(&self, phase: Phase) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
            (Phase::of(now) != Phase::Http2).then_some(phase as u8)
        });
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
        (self.exchange.phase() == Phase::Headers && self.header_deadline.as_mut().poll(cx).is_ready())
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

/// The timeouts on tokio's paused clock: every deadline is exact, whatever the machine's load.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::time::Instant;

    use super::{Exchange, PREFACE, Timeouts};

    const IDLE: Duration = Duration::from_secs(60);
    const HEADER: Duration = Duration::from_secs(5);

    /// A connection's server side under the timeouts, read until it fails; the client's side.
    fn connection() -> (tokio::task::JoinHandle<(String, Duration)>, DuplexStream, std::sync::Arc<Exchange>) {
        let (client, server) = tokio::io::duplex(1 << 16);
        let exchange = Exchange::new();
        let mut io = Timeouts::new(server, IDLE, HEADER, exchange.clone());
        let started = Instant::now();
        let reader = tokio::spawn(async move {
            let mut buf = [0; 1024];
            loop {
                match io.read(&mut buf).await {
                    Ok(0) => return ("closed".to_owned(), started.elapsed()),
                    Ok(_) => {}
                    Err(error) => return (error.to_string(), started.elapsed()),
                }
            }
        });
        (reader, client, exchange)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_gets_the_header_read_timeout_for_its_first_request() {
        let (reader, _client, _) = connection();
        assert_eq!(reader.await.unwrap(), ("header read timeout".to_owned(), HEADER));
    }

    #[tokio::test(start_paused = true)]
    async fn headers_trickled_byte_by_byte_still_time_out_from_their_first_byte() {
        let (reader, mut client, _) = connection();
        // 14 s of bytes, one every 0.4 s; the server stops reading at 5 s.
        for byte in b"POST /mutate HTTP/1.1\r\nHost: x\r\n" {
            if client.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        assert_eq!(reader.await.unwrap(), ("header read timeout".to_owned(), HEADER));
    }

    /// A request's headers sent at 0 s, answered at 1 s.
    async fn one_request_answered(client: &mut DuplexStream, exchange: &Exchange) {
        client.write_all(b"POST /mutate HTTP/1.1\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        exchange.answering();
        exchange.answered();
    }

    #[tokio::test(start_paused = true)]
    async fn between_requests_only_the_idle_timeout_applies() {
        let (reader, mut client, exchange) = connection();
        one_request_answered(&mut client, &exchange).await;
        // The last byte came at 0 s: the idle timeout runs from there, and no header timeout.
        assert_eq!(reader.await.unwrap(), ("idle timeout".to_owned(), IDLE));
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_request_starts_its_own_header_read_timeout() {
        let (reader, mut client, exchange) = connection();
        one_request_answered(&mut client, &exchange).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        client.write_all(b"POST").await.unwrap();
        assert_eq!(
            reader.await.unwrap(),
            ("header read timeout".to_owned(), Duration::from_secs(11) + HEADER)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_that_takes_long_is_not_a_header_timeout() {
        let (reader, mut client, exchange) = connection();
        client.write_all(b"POST /mutate HTTP/1.1\r\n\r\n").await.unwrap();
        exchange.answering();
        assert_eq!(reader.await.unwrap(), ("idle timeout".to_owned(), IDLE));
    }

    #[tokio::test(start_paused = true)]
    async fn http2_has_only_the_idle_timeout() {
        let (reader, mut client, exchange) = connection();
        client.write_all(PREFACE).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        exchange.answered(); // streams coming and going leave an HTTP/2 connection as it is
        // A HEADERS frame that never completes: nothing more arrives.
        client.write_all(b"\x00\x00\x64\x01\x04\x00\x00\x00\x01").await.unwrap();
        assert_eq!(reader.await.unwrap(), ("idle timeout".to_owned(), Duration::from_secs(1) + IDLE));
    }

    #[tokio::test(start_paused = true)]
    async fn a_preface_split_over_reads_is_recognised() {
        let (reader, mut client, _) = connection();
        for part in PREFACE.chunks(5) {
            client.write_all(part).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let last_byte = Duration::from_millis(100) * (PREFACE.len().div_ceil(5) as u32 - 1);
        assert_eq!(reader.await.unwrap(), ("idle timeout".to_owned(), last_byte + IDLE));
    }
}
