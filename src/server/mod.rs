//! `sidecar-injector serve`: the pure function behind HTTPS, for running in the cluster.
//!
//! One [`Server`] owns two listeners: HTTPS (rustls, TLS 1.2 and 1.3, HTTP/1.1 and HTTP/2) for the
//! API server, and plain HTTP for `/metrics`. A background task reloads the configuration and the
//! certificate files when their content changes. Shutdown is graceful: readiness fails first, so
//! that the Service stops sending new reviews, then in-flight requests finish, then it exits.

mod capacity;
pub mod certs;
mod connections;
mod handlers;
mod idle;
pub(crate) mod metrics;
mod probes;
mod reload;
mod self_managed;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use handlers::{Limits, MAX_BODY, MUTATE_PATH};
pub use self_managed::{FIELD_MANAGER, Managed, ManagedError, SelfManaged};
use state::AppState;

use self::capacity::Capacity;
use self::certs::{CertFiles, CurrentCert};
use self::connections::Connections;
use self::probes::Probes;
use self::reload::Renewal;
use crate::Config;
use crate::config_file::{self, ConfigFileError};
use crate::watched::Watched;

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
    /// A client must finish its TLS handshake, and each request's headers from their first byte,
    /// within this time (slowloris).
    pub header_read_timeout: Duration,
    /// After a shutdown signal: how long readiness fails while requests are still served, so that
    /// endpoints are updated before the listener closes.
    pub drain_delay: Duration,
    /// After that: how long in-flight requests get to finish.
    pub shutdown_timeout: Duration,
    /// `/healthz` fails once the review runtime has not run its heartbeat for this long.
    pub liveness_window: Duration,
    /// Connections served at once; past it a new one is closed at once and counted.
    pub max_connections: usize,
    /// Connections served at once from one client address.
    pub max_connections_per_client: usize,
    /// A connection that sends nothing for this long is closed (idle keep-alive, idle HTTP/2, a
    /// HEADERS frame that never completes).
    pub idle_timeout: Duration,
    /// HTTP/2: a PING after this long without a frame; no answer within the same time closes it.
    pub http2_keepalive: Duration,
    /// HTTP/2: streams one connection may have open at once.
    pub http2_max_streams: u32,
    /// Serve `POST /testing/wedge`, which blocks every worker of the review runtime for 8 s: for
    /// the overload test only, to show that liveness fails when the review runtime is stuck.
    pub testing_wedge: bool,
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
            liveness_window: Duration::from_secs(5),
            // As many idle TLS connections as stay well inside the Deployment's memory limit
            // (BENCHMARKS.md, "Connections, overload and faults").
            max_connections: 1024,
            max_connections_per_client: 256,
            idle_timeout: Duration::from_secs(60),
            http2_keepalive: Duration::from_secs(20),
            http2_max_streams: 128,
            testing_wedge: false,
        }
    }
}

/// The configuration to start with, and the file to watch for changes when there is one.
fn first_config(path: Option<&Path>) -> Result<(Config, Option<Watched>), ServeError> {
    let Some(path) = path else {
        return Ok((Config::builtin(), None));
    };
    let mut watched = Watched::new([path]);
    let read =
        watched.read_if_changed().map_err(|e| ConfigFileError::Read { path: e.path, source: e.source })?;
    let bytes = read.expect("the first read always reports a change");
    Ok((config_file::parse(path, &bytes[0])?, Some(watched)))
}

/// The serving certificate to start with, and what keeps it fresh.
async fn first_certificate(tls: &TlsSource, config: &Config) -> Result<(certs::Loaded, Renewal), ServeError> {
    Ok(match tls {
        TlsSource::Files { cert, key } => {
            let mut files = CertFiles::new(cert, key);
            let first = files.load_if_changed()?.expect("the first load always reports a change");
            (first, Renewal::Files(files))
        }
        TlsSource::SelfManaged(settings) => {
            let now = time::OffsetDateTime::now_utc();
            let (managed, first) = Managed::bootstrap((**settings).clone(), config, now).await?;
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
    })
}

/// The HTTPS routes with `config` in force, without TLS, sockets or reloads: what the server
/// serves, for in-process tests (`tower::ServiceExt::oneshot`).
pub fn routes(config: Config, limits: Limits) -> axum::Router {
    handlers::router(Arc::new(AppState::new(config, Options::local().liveness_window)), limits, false)
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigFileError),
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
    config_file: Option<Watched>,
    listener: TcpListener,
    /// Bound here, served from the probe thread's own runtime.
    metrics_listener: std::net::TcpListener,
}

impl Server {
    /// Load the configuration and certificate, and bind both ports. Any problem here is fatal:
    /// a webhook that started without them would fail every Pod creation.
    pub async fn bind(options: Options) -> Result<Server, ServeError> {
        // The kube client asks rustls for the process's default provider; when another crate
        // brings a second one (the AWS SDK in an all-features build), there is no default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (config, config_file) = first_config(options.config.as_deref())?;
        let (first, renewal) = first_certificate(&options.tls, &config).await?;
        let state = Arc::new(AppState::new(config, options.liveness_window));
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
        let metrics_listener = std::net::TcpListener::bind(options.metrics_listen)
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|source| ServeError::Io {
                what: "serving probes and metrics on",
                addr: options.metrics_listen.to_string(),
                source,
            })?;
        Ok(Server {
            current_cert: CurrentCert::new(&first),
            options,
            state,
            renewal,
            config_file,
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
        let Server { options, state, current_cert, renewal, config_file, listener, metrics_listener } = self;
        let tls = TlsAcceptor::from(certs::server_config(current_cert.clone()));
        let app = handlers::router(state.clone(), options.limits, options.testing_wedge);
        let probes = Probes::spawn(metrics_listener, state.clone()).map_err(|source| ServeError::Io {
            what: "starting the probe thread for",
            addr: options.metrics_listen.to_string(),
            source,
        })?;
        let heartbeat = tokio::spawn(probes::beat(state.clone()));
        let reloads = reload::Reloads { config: options.config.clone().zip(config_file), renewal };
        let reloader = tokio::spawn(reloads.run(state.clone(), current_cert, options.reload_interval));

        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Its header read timeout also closes idle keep-alive connections: kept in `idle` instead.
        builder.http1().timer(TokioTimer::new()).header_read_timeout(None);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(options.http2_keepalive)
            .keep_alive_timeout(options.http2_keepalive)
            .max_concurrent_streams(options.http2_max_streams);
        let connections = Connections {
            tls,
            builder,
            app,
            open: tokio::sync::watch::Sender::new(()),
            header_read_timeout: options.header_read_timeout,
            idle_timeout: options.idle_timeout,
            capacity: Capacity::new(
                options.max_connections.max(1),
                options.max_connections_per_client.max(1),
                state.clone(),
            ),
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
        if tokio::time::timeout(options.shutdown_timeout, connections.drain()).await.is_err() {
            tracing::warn!("in-flight requests did not finish in time");
        }
        reloader.abort();
        heartbeat.abort();
        let _ = tokio::task::spawn_blocking(move || probes.stop()).await;
        tracing::info!("stopped");
        Ok(())
    }
}
