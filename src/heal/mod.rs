//! `sidecar-injector heal`: the reconciler that keeps every Pod current by itself.
//!
//! It watches the Pods of the namespaces the live webhook configuration selects (kube-runtime's
//! watcher: a list, then a watch), classifies each as `audit` does, with the engine, and restarts
//! the workloads with missed or stale Pods the way `audit --restart` does, in health-gated waves
//! (`waves`): a few at a time, each to the end of its rollout, stopping once several in a row
//! fail. So a webhook can fail open (`failurePolicy: Ignore`) and the Pods created while it was
//! down are re-created injected, and a configuration change reaches the fleet without a person.
//!
//! What it must never do: restart a workload twice for the same change (the restart itself
//! records what it was for, `workloads::Key`), restart a workload whose pod template carries an
//! injection (that would loop), touch bare Pods, Jobs, opted-out workloads or its own namespace,
//! or act from two replicas at once (`lease`).

mod fleet;
mod lease;
mod metrics;
mod notes;
mod owners;
mod reconcile;
mod step;
mod waves;
mod webhook;
mod workloads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use waves::Limits;

use self::lease::Lease;
use self::metrics::HealMetrics;

/// Everything `heal` can be told.
#[derive(Debug, Clone)]
pub struct Options {
    /// The injection configuration, as the webhook has it; the built-in one when `None`.
    pub config: Option<PathBuf>,
    pub reload_interval: Duration,
    pub webhook_configuration: String,
    pub webhook: String,
    /// The reconciler's own namespace: never touched; its Lease lives there.
    pub namespace: String,
    /// This replica's name in the Lease (its Pod's name).
    pub identity: String,
    pub lease_name: String,
    pub lease_duration: Duration,
    pub limits: Limits,
    pub metrics_listen: SocketAddr,
    /// Pods asked for per list request.
    pub page_size: u32,
}

/// Why the reconciler could not start.
#[derive(Debug, thiserror::Error)]
pub enum HealError {
    #[error("cannot reach the API server: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Config(#[from] crate::config_file::ConfigFileError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// Reconcile until `shutdown` completes; then let another replica take the Lease at once.
pub async fn run(options: Options, shutdown: impl std::future::Future<Output = ()>) -> Result<(), HealError> {
    let loaded = reconcile::Loaded::read(options.config.as_deref())?;
    let client = kube::Client::try_default().await.map_err(|e| HealError::Unreachable(e.to_string()))?;
    let metrics = Arc::new(HealMetrics::default());
    let listener = tokio::net::TcpListener::bind(options.metrics_listen)
        .await
        .map_err(|source| HealError::Listen { addr: options.metrics_listen, source })?;
    let served = axum::serve(listener, metrics::router(metrics.clone()));
    let server = tokio::spawn(async move { served.await });
    let lease = Arc::new(Lease::new(
        client.clone(),
        &options.namespace,
        &options.lease_name,
        &options.identity,
        options.lease_duration,
    ));
    let (held, leading) = tokio::sync::watch::channel(None);
    let holder = tokio::spawn(hold(lease.clone(), options.lease_duration, held));
    tracing::info!(identity = %options.identity, lease = %options.lease_name, "heal: started");
    reconcile::Reconciler::new(client, options, loaded, metrics, lease.clone()).run(leading, shutdown).await;
    holder.abort();
    if let Err(error) = lease.release().await {
        tracing::warn!(%error, "heal: could not release the Lease");
    }
    server.abort();
    tracing::info!("heal: stopped");
    Ok(())
}

/// Try to take or renew the Lease, a third of its duration apart while holding it and a sixth
/// apart while not; publish what each attempt found. A holder that cannot renew for two thirds
/// of the duration stops acting before another replica may take over.
async fn hold(lease: Arc<Lease>, duration: Duration, held: tokio::sync::watch::Sender<Option<lease::Held>>) {
    let mut renewed: Option<tokio::time::Instant> = None;
    loop {
        let now = tokio::time::Instant::now();
        match lease.try_hold().await {
            Ok(found) => {
                renewed = found.leading.then_some(now);
                held.send_replace(Some(found));
            }
            Err(error) => {
                tracing::warn!(%error, "heal: the Lease could not be read or renewed");
                if renewed.is_some_and(|at| now.duration_since(at) > duration * 2 / 3) {
                    renewed = None;
                    held.send_replace(Some(lease::Held { leading: false, halted_under: None }));
                }
            }
        }
        let wait = if renewed.is_some() { duration / 3 } else { duration / 6 };
        tokio::time::sleep(wait).await;
    }
}
