//! `sidecar-injector serve`: the pure function behind HTTPS, for running in the cluster.
//!
//! One [`Server`] owns two listeners: HTTPS (rustls, TLS 1.2 and 1.3, HTTP/1.1 and HTTP/2) for the
//! API server, and plain HTTP for `/metrics`. A background task reloads the configuration and the
//! certificate files when their content changes. Shutdown is graceful: readiness fails first, so
//! that the Service stops sending new reviews, then in-flight requests finish, then it exits.

mod handlers;
mod metrics;
mod self_managed;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use handlers::{Limits, MAX_BODY, MUTATE_PATH};
use self_managed::Managed;
pub use self_managed::{FIELD_MANAGER, SelfManaged};
use state::AppState;

use crate::Config;
use crate::certs::{self, CertFiles, CurrentCert};

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files, such as a mounted cert-manager Secret; reloaded when they change.
    Files { cert: PathBuf, key: PathBuf },
    /// A CA and a certificate for `names` made at start, for running locally. The CA certificate
    /// is written to `ca_out` so that a client can trust it.
    Generated { names: Vec<String>, ca_out: PathBuf },
    /// A CA kept in a Secret and a caBundle written into the webhook configuration: see
    /// [`SelfManaged`].
    SelfManaged(Box<SelfManaged>),
}

/// What keeps the serving certificate fresh after start.
enum Renewal {
    Fixed,
    Files(CertFiles),
    Managed(Box<Managed>),
}

/// Everything `serve` can be told.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub tls: TlsSource,
    /// The configuration file; the built-in configuration when `None`.
    pub config: Option<PathBuf>,
    /// How often the configuration and certificate files are checked for changes.
    pub reload_interval: Duration,
    pub limits: Limits,
    /// A client must finish sending its request headers within this time (slowloris).
    pub header_read_timeout: Duration,
    /// After a shutdown signal: how long readiness fails while requests are still served, so that
    /// endpoints are updated before the listener closes.
    pub drain_delay: Duration,
    /// After that: how long in-flight requests get to finish.
    pub shutdown_timeout: Duration,
}

impl Options {
    /// The defaults of `sidecar-injector serve`.
    pub fn local() -> Self {
        Options {
            listen: ([127, 0, 0, 1], 8443).into(),
            metrics_listen: ([127, 0, 0, 1], 9090).into(),
            tls: TlsSource::Generated {
                names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
                ca_out: std::env::temp_dir().join("sidecar-injector-ca.pem"),
            },
            config: None,
            reload_interval: Duration::from_secs(2),
            limits: Limits { max_in_flight: 256, request_timeout: Duration::from_secs(10) },
            header_read_timeout: Duration::from_secs(5),
            drain_delay: Duration::from_secs(0),
            shutdown_timeout: Duration::from_secs(20),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("serving certificate: {0}")]
    Cert(#[from] certs::CertError),
    #[error("self-managed certificates: {0}")]
    Managed(#[from] self_managed::ManagedError),
    #[error("{what} {addr}: {source}")]
    Io { what: &'static str, addr: String, source: std::io::Error },
}

/// A server with its sockets bound, its configuration and certificate loaded.
pub struct Server {
    options: Options,
    state: Arc<AppState>,
    current_cert: Arc<CurrentCert>,
    renewal: Renewal,
    config_seen: Option<[u8; 32]>,
    listener: TcpListener,
    metrics_listener: TcpListener,
}

impl Server {
    /// Load the configuration and certificate, and bind both ports. Any problem here is fatal:
    /// a webhook that started without them would fail every Pod creation.
    pub async fn bind(options: Options) -> Result<Server, ServeError> {
        // The kube client asks rustls for the process's default provider; when another crate
        // brings a second one (the AWS SDK in an all-features build), there is no default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (config, config_seen) = match &options.config {
            Some(path) => {
                let (config, digest) = read_config(path)?;
                (config, Some(digest))
            }
            None => (Config::builtin(), None),
        };
        let state = Arc::new(AppState::new(config));

        let (first, renewal) = match &options.tls {
            TlsSource::Files { cert, key } => {
                let mut files = CertFiles::new(cert, key);
                let first = files.load_if_changed()?.expect("the first load always reports a change");
                (first, Renewal::Files(files))
            }
            TlsSource::SelfManaged(settings) => {
                let (managed, first) = Managed::bootstrap((**settings).clone()).await?;
                (first, Renewal::Managed(Box::new(managed)))
            }
            TlsSource::Generated { names, ca_out } => {
                let (ca, serving) = certs::generate_local(names)?;
                std::fs::write(ca_out, &ca.pem().cert_pem).map_err(|source| ServeError::Io {
                    what: "writing the CA certificate to",
                    addr: ca_out.display().to_string(),
                    source,
                })?;
                (certs::load(serving.cert_pem.as_bytes(), serving.key_pem.as_bytes())?, Renewal::Fixed)
            }
        };
        state.metrics.cert_expiry(first.not_after);
        tracing::info!(serial = %first.serial, not_after = first.not_after, "serving certificate loaded");

        let bind = |addr: SocketAddr, what| async move {
            TcpListener::bind(addr).await.map_err(|source| ServeError::Io {
                what,
                addr: addr.to_string(),
                source,
            })
        };
        let listener = bind(options.listen, "listening on").await?;
        let metrics_listener = bind(options.metrics_listen, "serving metrics on").await?;
        Ok(Server {
            current_cert: CurrentCert::new(&first),
            options,
            state,
            renewal,
            config_seen,
            listener,
            metrics_listener,
        })
    }

    /// The HTTPS address, with the port the system chose when asked for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound socket has an address")
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener.local_addr().expect("a bound socket has an address")
    }

    /// Serve until `shutdown` completes, then drain and return.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let Server { options, state, current_cert, mut renewal, mut config_seen, listener, metrics_listener } =
            self;
        let tls = TlsAcceptor::from(certs::server_config(current_cert.clone()));
        let app = handlers::router(state.clone(), options.limits);

        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_app = handlers::metrics_router(state.clone());
        let metrics = tokio::spawn(async move {
            let stopped = async {
                let _ = metrics_stopped.await;
            };
            axum::serve(metrics_listener, metrics_app).with_graceful_shutdown(stopped).await
        });
        let reloader = tokio::spawn({
            let (state, options) = (state.clone(), options.clone());
            async move {
                let mut tick = tokio::time::interval(options.reload_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    if let Some(path) = &options.config {
                        reload_config(&state, path, &mut config_seen);
                    }
                    let next = match &mut renewal {
                        Renewal::Fixed => Ok(None),
                        Renewal::Files(files) => files.load_if_changed().map_err(|e| e.to_string()),
                        Renewal::Managed(managed) => managed.tick().await.map_err(|e| e.to_string()),
                    };
                    renew_cert(&state, next, &current_cert);
                }
            }
        });

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        let connections = Connections {
            tls,
            builder,
            app,
            graceful: GracefulShutdown::new(),
            handshake_timeout: options.header_read_timeout,
        };
        state.set_ready(true);
        tracing::info!(listen = %options.listen, metrics = %options.metrics_listen, "ready");
        connections.accept_until(&listener, shutdown).await;

        // Fail readiness first, and keep serving while the endpoints catch up, so that no client
        // that still sees this Pod as an endpoint is refused.
        state.set_ready(false);
        tracing::info!(drain_delay_s = options.drain_delay.as_secs_f64(), "shutting down: not ready");
        connections.accept_until(&listener, tokio::time::sleep(options.drain_delay)).await;
        drop(listener);
        if tokio::time::timeout(options.shutdown_timeout, connections.graceful.shutdown()).await.is_err() {
            tracing::warn!("in-flight requests did not finish in time");
        }
        reloader.abort();
        let _ = stop_metrics.send(());
        let _ = metrics.await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// What each accepted connection is served with.
struct Connections {
    tls: TlsAcceptor,
    builder: auto::Builder<TokioExecutor>,
    app: axum::Router,
    graceful: GracefulShutdown,
    handshake_timeout: Duration,
}

impl Connections {
    /// Accept and serve connections until `stop` completes.
    async fn accept_until(&self, listener: &TcpListener, stop: impl Future<Output = ()>) {
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

fn read_config(path: &Path) -> Result<(Config, [u8; 32]), ServeError> {
    let fail = |message: String| ServeError::Config { path: path.to_owned(), message };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let config = Config::from_slice(&bytes).map_err(|e| fail(e.to_string()))?;
    Ok((config, Sha256::digest(&bytes).into()))
}

/// Swap in the configuration file's new content, if it changed and is valid. An invalid file is
/// logged and counted, and the configuration in force keeps serving.
fn reload_config(state: &AppState, path: &Path, seen: &mut Option<[u8; 32]>) {
    let Ok(bytes) = std::fs::read(path) else {
        // Mid-swap of a ConfigMap symlink, or deleted: try again on the next tick.
        return;
    };
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    if *seen == Some(digest) {
        return;
    }
    *seen = Some(digest);
    match Config::from_slice(&bytes) {
        Ok(config) => {
            state.config.store(Arc::new(config));
            state.metrics.config_reload(true);
            tracing::info!(path = %path.display(), "configuration reloaded");
        }
        Err(error) => {
            state.metrics.config_reload(false);
            tracing::error!(path = %path.display(), %error, "new configuration refused; the previous one stays in force");
        }
    }
}

fn renew_cert(state: &AppState, next: Result<Option<certs::Loaded>, String>, current: &CurrentCert) {
    match next {
        Ok(None) => {}
        Ok(Some(loaded)) => {
            current.replace(&loaded);
            state.metrics.cert_reload(true);
            state.metrics.cert_expiry(loaded.not_after);
            tracing::info!(serial = %loaded.serial, not_after = loaded.not_after, "serving certificate replaced");
        }
        Err(error) => {
            state.metrics.cert_reload(false);
            tracing::warn!(%error, "new certificate refused; the previous one stays in use");
        }
    }
}
