//! Accepting connections: TLS, then HTTP/1.1 or HTTP/2 on the same port, each connection watched
//! for a graceful shutdown.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What each accepted connection is served with.
pub(super) struct Connections {
    pub tls: TlsAcceptor,
    pub builder: auto::Builder<TokioExecutor>,
    pub app: axum::Router,
    pub graceful: GracefulShutdown,
    pub handshake_timeout: Duration,
}

impl Connections {
    /// Accept and serve connections until `stop` completes.
    pub async fn accept_until(&self, listener: &TcpListener, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => self.spawn(tcp),
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

    fn spawn(&self, tcp: tokio::net::TcpStream) {
        // An answer goes out as several small writes (TLS records, HTTP/2 frames); with Nagle's
        // algorithm the last waits for the client's delayed ACK, 40 ms on Linux. The load
        // benchmark showed those stalls on HTTP/2 until this was set.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY could not be set");
        }
        let (tls, builder, app) = (self.tls.clone(), self.builder.clone(), self.app.clone());
        let (watcher, handshake_timeout) = (self.graceful.watcher(), self.handshake_timeout);
        tokio::spawn(async move {
            // A client that never finishes its handshake is dropped like one that never finishes
            // its headers.
            let Ok(Ok(stream)) = tokio::time::timeout(handshake_timeout, tls.accept(tcp)).await else {
                return;
            };
            let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            let _ = watcher.watch(connection.into_owned()).await;
        });
    }
}
