//! `sidecar-injector audit`: flags in, [`sidecar_injector::audit`] called, the report printed, and
//! an exit status a pipeline can gate on.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use sidecar_injector::audit::{self, AuditError, Scope, Target};
use sidecar_injector::engine::registration::{CONFIGURATION_NAME, WEBHOOK_NAME};
use sidecar_injector::{Config, config_file};

/// Nothing stale or missed.
const CLEAN: u8 = 0;
/// Stale or missed Pods found: something must be restarted.
const LEFT_BEHIND: u8 = 1;
/// The audit could not run: bad flags (clap's own status) or a bad configuration file.
const CANNOT_RUN: u8 = 2;
/// Talking to the cluster failed: unreachable, forbidden, or the webhook configuration missing;
/// or a restart was refused (the report is printed, each refused restart marked).
const CLUSTER: u8 = 3;

#[derive(Args)]
pub struct AuditArgs {
    /// The injection configuration in force (YAML or JSON); the built-in one when left out.
    #[arg(short, long, value_name = "CONFIG")]
    config: Option<PathBuf>,
    /// The namespace to audit; the kubeconfig's namespace when neither this nor -A is given.
    #[arg(short, long, conflicts_with = "all_namespaces")]
    namespace: Option<String>,
    /// Every namespace the webhook configuration selects.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// `table` for people, `json` for pipelines.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// The MutatingWebhookConfiguration whose selectors say which Pods the webhook is sent.
    #[arg(long, default_value = CONFIGURATION_NAME)]
    webhook_configuration: String,
    /// The webhook in it.
    #[arg(long, default_value = WEBHOOK_NAME)]
    webhook: String,
    /// Restart the Deployments, StatefulSets and DaemonSets that have stale or missed Pods, as
    /// `kubectl rollout restart` does; bare Pods and Jobs are listed, never touched.
    #[arg(long)]
    restart: bool,
    /// With --restart: print what would be restarted, and restart nothing.
    #[arg(long, requires = "restart")]
    dry_run: bool,
    /// Objects asked for per list request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    page_size: u32,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

pub fn audit(args: AuditArgs) -> ExitCode {
    let config = match &args.config {
        Some(path) => config_file::load(path),
        None => Ok(Config::builtin()),
    };
    let config = match config {
        Ok(config) => config,
        Err(error) => return fail(CANNOT_RUN, &error.to_string()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(&args, &config)),
        Err(error) => return fail(CANNOT_RUN, &error.to_string()),
    };
    match result {
        Ok(report) => {
            match args.output {
                Output::Table => print!("{}", report.table()),
                Output::Json => {
                    println!("{}", serde_json::to_string_pretty(&report).expect("reports always serialize"))
                }
            }
            let refused = report.restarted.iter().flatten().any(|r| r.failed());
            ExitCode::from(match (refused, report.needs_restart()) {
                (true, _) => CLUSTER,
                (false, true) => LEFT_BEHIND,
                (false, false) => CLEAN,
            })
        }
        Err(error) => fail(CLUSTER, &error.to_string()),
    }
}

async fn run(args: &AuditArgs, config: &Config) -> Result<audit::Report, AuditError> {
    // As `serve` does: with both ring and aws-lc-rs linked, rustls has no default provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kube =
        kube::Config::infer().await.map_err(|e| AuditError::Unreachable(format!("no kubeconfig: {e}")))?;
    let server = kube.cluster_url.to_string();
    let client = kube::Client::try_from(kube).map_err(|e| AuditError::Unreachable(e.to_string()))?;
    let unreachable = |error| match error {
        AuditError::Unreachable(why) => AuditError::Unreachable(format!("{server}: {why}")),
        other => other,
    };
    let scope = match (&args.namespace, args.all_namespaces) {
        (_, true) => Scope::AllNamespaces,
        (Some(namespace), false) => Scope::Namespace(namespace.clone()),
        (None, false) => Scope::Namespace(client.default_namespace().to_owned()),
    };
    let target = Target {
        configuration: args.webhook_configuration.clone(),
        webhook: args.webhook.clone(),
        scope,
        page_size: args.page_size,
    };
    let progress = |line: &str| eprintln!("audit: {line}");
    let mut report = audit::survey(&client, &target, config, progress).await.map_err(unreachable)?;
    if args.restart {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
            .format(&time::format_description::well_known::Rfc3339)
            .expect("a time formats as RFC 3339");
        report.restarted = Some(audit::restart(&client, &report, &now, args.dry_run).await);
    }
    Ok(report)
}

fn fail(status: u8, message: &str) -> ExitCode {
    eprintln!("sidecar-injector audit: {message}");
    ExitCode::from(status)
}
