//! Accepting connections: a place under the connection limits, TLS, then HTTP/1.1 or HTTP/2 on
//! the same port, with the idle and header read timeouts. A connection closes gracefully (what
//! it is answering is answered) when the server shuts down or when it is evicted to make room.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::capacity::{Capacity, Closing, Place};
use super::idle::{Exchange, Timeouts};

/// What each accepted connection is served with.
pub(super) struct Connections {
    pub tls: TlsAcceptor,
    pub builder: auto::Builder<TokioExecutor>,
    pub app: axum::Router,
    /// Never sent on: each connection holds a receiver until it has closed, so the sender sees
    /// when every one has. (hyper-util's `GracefulShutdown` cannot close one connection alone.)
    pub open: watch::Sender<()>,
    /// The bound on the TLS handshake, and then on each HTTP/1.1 request's headers (see `idle`).
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub capacity: Arc<Capacity>,
}

impl Connections {
    /// Accept and serve connections until `stop` completes.
    pub async fn accept_until(&self, listener: &TcpListener, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => match self.capacity.admit(peer.ip()) {
                        Some(place) => self.spawn(tcp, place),
                        // Past a limit: closed at once (and counted), before any TLS work.
                        None => drop(tcp),
                    },
                    // Out of file descriptors and the like: wait a little rather than spin.
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                () = &mut stop => return,
            }
        }
    }

    /// Ask every connection to finish what it is answering and close, and wait until all have.
    pub async fn drain(&self) {
        self.capacity.close_all();
        self.open.closed().await;
    }

    fn spawn(&self, tcp: tokio::net::TcpStream, place: Place) {
        // An answer goes out as several small writes (TLS records, HTTP/2 frames); with Nagle's
        // algorithm the last waits for the client's delayed ACK.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY could not be set");
        }
        let (tls, builder, app) = (self.tls.clone(), self.builder.clone(), self.app.clone());
        let (open, header_read_timeout) = (self.open.subscribe(), self.header_read_timeout);
        let idle_timeout = self.idle_timeout;
        tokio::spawn(async move {
            // A client that never finishes its handshake is dropped like one that never finishes
            // its headers.
            let stream = tokio::select! {
                done = tokio::time::timeout(header_read_timeout, tls.accept(tcp)) => match done {
                    Ok(Ok(stream)) => stream,
                    _ => return,
                },
                _ = place.closing() => return,
            };
            place.handshaken(stream.get_ref().1.alpn_protocol());
            let (exchange, activity) = (Exchange::new(), place.activity());
            let stream =
                TokioIo::new(Timeouts::new(stream, idle_timeout, header_read_timeout, exchange.clone()));
            // hyper calls the service once it has a request's headers; what it answers ends the
            // request for the header read timeout.
            let service = hyper::service::service_fn(move |request| {
                exchange.answering();
                let (app, exchange, in_flight) = (app.clone(), exchange.clone(), activity.request());
                async move {
                    let response = tower::ServiceExt::oneshot(app, request).await;
                    exchange.answered();
                    drop(in_flight);
                    response
                }
            });
            let connection = builder.serve_connection(stream, service);
            tokio::pin!(connection);
            let why = tokio::select! {
                _ = connection.as_mut() => return,
                why = place.closing() => why,
            };
            connection.as_mut().graceful_shutdown();
            match why {
                // The server's shutdown timeout bounds this wait.
                Closing::Shutdown => drop(connection.await),
                // Its place is another's: a client that keeps it from closing (an HTTP/2 client
                // that does not answer the GOAWAY's PING) is cut off.
                Closing::Evicted => drop(tokio::time::timeout(header_read_timeout, connection).await),
            }
            drop(open);
        });
    }
}
