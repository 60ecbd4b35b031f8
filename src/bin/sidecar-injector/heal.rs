//! `sidecar-injector heal`: flags in, [`sidecar_injector::heal::run`] until SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use sidecar_injector::engine::registration::{CONFIGURATION_NAME, WEBHOOK_NAME};
use sidecar_injector::heal::{Limits, Options, run};

#[derive(Args)]
pub struct HealArgs {
    /// The injection configuration in force (YAML or JSON), as the webhook has it; the built-in
    /// one when left out. Read again when its content changes.
    #[arg(short, long, value_name = "CONFIG")]
    config: Option<PathBuf>,
    /// Seconds between checks of the configuration file for changes.
    #[arg(long, default_value = "2", value_parser = positive_seconds)]
    reload_interval: Duration,
    /// The MutatingWebhookConfiguration whose selectors say which Pods the webhook is sent.
    #[arg(long, default_value = CONFIGURATION_NAME)]
    webhook_configuration: String,
    /// The webhook in it.
    #[arg(long, default_value = WEBHOOK_NAME)]
    webhook: String,
    /// The reconciler's own namespace (never touched; its Lease is there).
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: String,
    /// This replica's name in the Lease.
    #[arg(long, env = "POD_NAME")]
    identity: String,
    /// The Lease that elects the one replica that acts.
    #[arg(long, default_value = "sidecar-injector-heal")]
    lease_name: String,
    /// Seconds a Lease holder has to renew it before another replica may take over.
    #[arg(long, default_value = "15", value_parser = positive_seconds)]
    lease_duration: Duration,
    /// Workloads mid-rollout at once, across the cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent: u32,
    /// Restarts started in any minute.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    max_per_minute: u32,
    /// Failed workloads in a row that stop the waves until the configuration changes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    max_failures: u32,
    /// Seconds a restarted workload has to finish its rollout before it is marked failed.
    #[arg(long, default_value = "600", value_parser = positive_seconds)]
    progress_deadline: Duration,
    /// The plain-HTTP address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "127.0.0.1:9091")]
    metrics_listen: SocketAddr,
    /// Pods asked for per list request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    page_size: u32,
}

pub fn heal(args: HealArgs) -> Result<(), String> {
    sidecar_injector::logging::init();
    // As `serve` does: with both ring and aws-lc-rs linked, rustls has no default provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if args.lease_duration < MIN_LEASE {
        return Err(format!(
            "--lease-duration: at least {} s, so that a holder renews it in time",
            MIN_LEASE.as_secs()
        ));
    }
    let options = Options {
        config: args.config,
        reload_interval: args.reload_interval,
        webhook_configuration: args.webhook_configuration,
        webhook: args.webhook,
        namespace: args.namespace,
        identity: args.identity,
        lease_name: args.lease_name,
        lease_duration: args.lease_duration,
        limits: Limits {
            max_concurrent: args.max_concurrent as usize,
            per_minute: args.max_per_minute as usize,
            max_failures: args.max_failures as usize,
            progress_deadline: args.progress_deadline,
        },
        metrics_listen: args.metrics_listen,
        page_size: args.page_size,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run(options, crate::serve::shutdown_signal())).map_err(|e| e.to_string())
}

/// A Lease renewed every third of its duration, each renewal a request that may take a second.
const MIN_LEASE: Duration = Duration::from_secs(3);

/// Seconds as a flag gives them: a finite number above 0.
fn positive_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(format!("{text}: a number of seconds above 0")),
    }
}
