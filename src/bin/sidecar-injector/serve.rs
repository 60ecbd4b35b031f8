//! The `serve` and `certs` commands: flags in, [`sidecar_injector::server`] and
//! [`sidecar_injector::certs`] called.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use sidecar_injector::engine::registration::{CONFIGURATION_NAME, WEBHOOK_NAME};
use sidecar_injector::server::certs::{self, Ca};
use sidecar_injector::server::{Limits, Options, SelfManaged, Server, TlsSource};

#[derive(Args)]
pub struct ServeArgs {
    /// The HTTPS address.
    #[arg(long, default_value_t = Options::local().listen)]
    listen: SocketAddr,
    /// The plain-HTTP address of /healthz, /readyz and /metrics, served from a thread of its own.
    #[arg(long, default_value_t = Options::local().metrics_listen)]
    metrics_listen: SocketAddr,
    /// The injection configuration, reloaded when it changes; the built-in one when left out.
    #[arg(short, long, value_name = "CONFIG")]
    config: Option<PathBuf>,
    /// The serving certificate (PEM), reloaded when it changes. Without it, a CA and a certificate
    /// for localhost are made at start.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The serving certificate's private key (PEM).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Where to write the CA of a made certificate, for clients to trust.
    #[arg(long, value_name = "FILE", conflicts_with = "tls_cert")]
    ca_out: Option<PathBuf>,
    /// Seconds between checks of the configuration and certificate files for changes.
    #[arg(long, default_value_t = Options::local().reload_interval.as_secs_f64())]
    reload_interval: f64,
    /// Reviews answered at once; more are refused at once with 503.
    #[arg(long, default_value_t = Options::local().limits.max_in_flight)]
    max_in_flight: usize,
    /// Seconds a request may take, body included.
    #[arg(long, default_value_t = Options::local().limits.request_timeout.as_secs_f64())]
    request_timeout: f64,
    /// Seconds a client has to send its request headers.
    #[arg(long, default_value_t = Options::local().header_read_timeout.as_secs_f64())]
    header_read_timeout: f64,
    /// Seconds readiness fails before the listener closes, after SIGTERM.
    #[arg(long, default_value_t = Options::local().drain_delay.as_secs_f64())]
    drain_delay: f64,
    /// Seconds in-flight requests get to finish after that.
    #[arg(long, default_value_t = Options::local().shutdown_timeout.as_secs_f64())]
    shutdown_timeout: f64,
    /// Seconds the review runtime may go without running its heartbeat before /healthz fails.
    #[arg(long, default_value_t = Options::local().liveness_window.as_secs_f64())]
    liveness_window: f64,
    /// Connections served at once; past it a new one is closed at once and counted.
    #[arg(long, default_value_t = Options::local().max_connections)]
    max_connections: usize,
    /// Connections served at once from one client address.
    #[arg(long, default_value_t = Options::local().max_connections_per_client)]
    max_connections_per_client: usize,
    /// Seconds a connection may send nothing before it is closed.
    #[arg(long, default_value_t = Options::local().idle_timeout.as_secs_f64())]
    idle_timeout: f64,
    /// HTTP/2: seconds without a frame before a PING, and then for its answer.
    #[arg(long, default_value_t = Options::local().http2_keepalive.as_secs_f64())]
    http2_keepalive: f64,
    /// HTTP/2: streams one connection may have open at once.
    #[arg(long, default_value_t = Options::local().http2_max_streams)]
    http2_max_streams: u32,
    /// For the overload test only: serve POST /testing/wedge, which blocks the review runtime.
    #[arg(long, hide = true)]
    testing_wedge: bool,
    #[command(flatten)]
    managed: ManagedArgs,
}

/// Self-managed certificates: the CA in a Secret, the caBundle written into the webhook
/// configuration. Talks to the API server with the in-cluster configuration (or the kubeconfig).
#[derive(Args)]
struct ManagedArgs {
    /// Manage the certificates in the cluster.
    #[arg(long, conflicts_with_all = ["tls_cert", "ca_out"], requires_all = ["namespace", "service"])]
    self_managed: bool,
    /// The namespace of the Service and the CA Secret (the Pod's own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// The Service in front of the webhook.
    #[arg(long)]
    service: Option<String>,
    /// The Secret that holds the CA.
    #[arg(long, default_value = "sidecar-injector-ca")]
    ca_secret: String,
    /// The MutatingWebhookConfiguration to write the caBundle into.
    #[arg(long, default_value = CONFIGURATION_NAME)]
    webhook_configuration: String,
    /// The webhooks in it (repeat for several).
    #[arg(long = "webhook", default_value = WEBHOOK_NAME)]
    webhooks: Vec<String>,
    /// Days a serving certificate is valid; renewed when a third is left.
    #[arg(long, default_value_t = 30)]
    serving_validity_days: u64,
    /// Days the CA is valid; rotated when a third is left.
    #[arg(long, default_value_t = 3650)]
    ca_validity_days: u64,
}

pub fn serve(args: ServeArgs) -> Result<(), String> {
    let _logs = sidecar_injector::logging::init_buffered();
    let seconds = |s: f64| Duration::try_from_secs_f64(s).map_err(|e| format!("{s}: {e}"));
    let defaults = Options::local();
    let tls = match (args.tls_cert, args.tls_key) {
        _ if args.managed.self_managed => TlsSource::SelfManaged(Box::new(self_managed(args.managed)?)),
        (Some(cert), Some(key)) => TlsSource::Files { cert, key },
        _ => match (defaults.tls, args.ca_out) {
            (TlsSource::Generated { names, .. }, Some(ca_out)) => TlsSource::Generated { names, ca_out },
            (generated, _) => generated,
        },
    };
    let options = Options {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        tls,
        config: args.config,
        reload_interval: seconds(args.reload_interval)?,
        limits: Limits {
            max_in_flight: args.max_in_flight.max(1),
            request_timeout: seconds(args.request_timeout)?,
        },
        header_read_timeout: seconds(args.header_read_timeout)?,
        drain_delay: seconds(args.drain_delay)?,
        shutdown_timeout: seconds(args.shutdown_timeout)?,
        liveness_window: seconds(args.liveness_window)?,
        max_connections: args.max_connections,
        max_connections_per_client: args.max_connections_per_client,
        idle_timeout: seconds(args.idle_timeout)?,
        http2_keepalive: seconds(args.http2_keepalive)?,
        http2_max_streams: args.http2_max_streams,
        testing_wedge: args.testing_wedge,
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let server = Server::bind(options.clone()).await.map_err(|e| e.to_string())?;
        if let TlsSource::Generated { ca_out, .. } = &options.tls {
            let port = server.local_addr().port();
            eprintln!("sidecar-injector: serving https://localhost:{port}/mutate with a certificate signed by {}", ca_out.display());
            eprintln!("try it:");
            eprintln!(
                "  curl --cacert {} -H 'Content-Type: application/json' --data-binary @tests/fixtures/pod-create-review.json https://localhost:{port}/mutate",
                ca_out.display()
            );
        }
        server.run(shutdown_signal()).await.map_err(|e| e.to_string())
    })
}

fn self_managed(args: ManagedArgs) -> Result<SelfManaged, String> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let kube =
        runtime.block_on(kube::Config::infer()).map_err(|e| format!("no Kubernetes API to talk to: {e}"))?;
    let day = Duration::from_secs(24 * 3600);
    Ok(SelfManaged {
        kube,
        namespace: args.namespace.expect("clap requires --namespace"),
        service: args.service.expect("clap requires --service"),
        ca_secret: args.ca_secret,
        webhook_configuration: args.webhook_configuration,
        webhooks: args.webhooks,
        serving_validity: day * args.serving_validity_days.max(1) as u32,
        ca_validity: day * args.ca_validity_days.max(1) as u32,
        resync: Duration::from_secs(300),
    })
}

/// SIGTERM (from the kubelet) or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[derive(Args)]
pub struct CertsArgs {
    /// The webhook's Service.
    #[arg(long)]
    service: String,
    /// The Service's namespace.
    #[arg(long)]
    namespace: String,
    /// The folder to write into; created when missing.
    #[arg(long)]
    out: PathBuf,
    /// The name of the TLS Secret; the Service's name when left out.
    #[arg(long)]
    secret_name: Option<String>,
    /// Days the serving certificate is valid (the CA: ten times that).
    #[arg(long, default_value_t = 365)]
    days: i64,
}

/// Writes `ca.crt`, `tls.crt`, `tls.key`, `secret.yaml` and `ca-bundle.txt`.
pub fn certs(args: CertsArgs) -> Result<(), String> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let now = time::OffsetDateTime::now_utc();
    let ca = Ca::for_service(&args.service, now, time::Duration::days(args.days * 10))
        .map_err(|e| e.to_string())?;
    let names = certs::service_names(&args.service, &args.namespace);
    let serving = ca.issue(&names, now, time::Duration::days(args.days)).map_err(|e| e.to_string())?;
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": args.secret_name.as_deref().unwrap_or(&args.service), "namespace": args.namespace},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64(&serving.cert_pem),
            "tls.key": b64(&serving.key_pem),
            "ca.crt": b64(&ca.pem().cert_pem),
        }
    });
    let secret = serde_saphyr::to_string(&secret).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let files = [
        ("ca.crt", ca.pem().cert_pem.clone()),
        ("tls.crt", serving.cert_pem),
        ("tls.key", serving.key_pem),
        ("secret.yaml", secret),
        ("ca-bundle.txt", format!("{}\n", b64(&ca.pem().cert_pem))),
    ];
    for (name, content) in files {
        let path = args.out.join(name);
        write_private(&path, content.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!("wrote {}: ca.crt, tls.crt, tls.key, secret.yaml, ca-bundle.txt", args.out.display());
    println!("the certificate is for {}", names.join(", "));
    println!("apply secret.yaml, and put the content of ca-bundle.txt in the webhook's caBundle");
    Ok(())
}

/// Key material is readable by its owner only.
fn write_private(path: &std::path::Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(content)
}
