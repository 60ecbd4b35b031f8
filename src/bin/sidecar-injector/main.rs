//! The `sidecar-injector` command: the webhook's code path, run by hand (`review`, `inject`,
//! `config`), and the in-cluster server (`serve`, `certs`, in `serve.rs`).

#![warn(clippy::too_many_lines)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sidecar_injector::engine::registration::{Client, match_conditions, webhook_configuration};
use sidecar_injector::engine::{Level, config::BUILTIN_YAML, manifests};
use sidecar_injector::{Config, config_file, review};

#[cfg(feature = "audit")]
mod audit;
#[cfg(feature = "heal")]
mod heal;
#[cfg(feature = "server")]
mod serve;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sidecar-injector",
    version,
    about = "A Kubernetes mutating webhook that injects sidecars into Pods"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer one AdmissionReview, as the webhook would, and print the response.
    ///
    /// Exits 0 for any review it could answer, allowed or denied; non-zero when the input is not
    /// an AdmissionReview.
    Review {
        /// The injection configuration (YAML or JSON); the built-in one when left out.
        #[arg(short, long, value_name = "CONFIG")]
        config: Option<PathBuf>,
        /// Also print the decision, the warnings and the decoded patch on stderr.
        #[arg(long)]
        explain: bool,
        /// The AdmissionReview to answer; `-` or nothing reads stdin.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Inject into the Pods and pod templates of Kubernetes manifests, offline, through the
    /// webhook's own code path, and print the manifests.
    ///
    /// Understands Pods, PodTemplates, Deployments, StatefulSets, DaemonSets, ReplicaSets,
    /// ReplicationControllers, Jobs, CronJobs (in v1, apps/v1 and batch/v1) and Lists of them;
    /// other documents pass through. YAML is read as kubectl reads it (`0400` is octal). Each
    /// document gets a line on stderr saying what was done and why; when any is refused, each is
    /// named, nothing is printed, and the exit status is 1. Comments are not kept, and keys come
    /// out in alphabetical order.
    Inject {
        /// The injection configuration (YAML or JSON); the built-in one when left out.
        #[arg(short, long, value_name = "CONFIG")]
        config: Option<PathBuf>,
        /// The manifests (multi-document YAML or JSON); `-` reads stdin.
        #[arg(short, long = "filename", value_name = "FILE")]
        file: PathBuf,
        /// The namespace of objects that do not name theirs, for the skip rules.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Find the Pods the configuration has left behind: current, stale (injected with another
    /// configuration), missed (never injected), by workload; optionally restart them.
    ///
    /// Exits 0 when nothing is stale or missed, 1 when something is, 2 when it cannot run (bad
    /// flags or configuration), 3 when talking to the cluster fails.
    #[cfg(feature = "audit")]
    Audit(Box<audit::AuditArgs>),
    /// Keep every Pod current by itself: watch the Pods the webhook selects, and restart the
    /// workloads with missed or stale Pods in health-gated waves. Run in the cluster, as its own
    /// Deployment (deploy-incluster/heal/); one replica acts at a time.
    #[cfg(feature = "heal")]
    Heal(Box<heal::HealArgs>),
    /// Check or print configurations.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the MutatingWebhookConfiguration for a configuration, with the matchConditions that
    /// keep Pods it would leave alone from being sent (for GitOps, and for the Lambda).
    ///
    /// Says on stderr when the profiles' selectors were too large to express, and every Pod the
    /// other conditions pass is sent.
    WebhookConfig {
        /// The injection configuration (YAML or JSON); the built-in one when left out.
        #[arg(short, long, value_name = "CONFIG")]
        config: Option<PathBuf>,
        /// Send reviews to this URL (a Lambda's Function URL with its path token) instead of the
        /// in-cluster Service.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// The namespace of the in-cluster Service.
        #[arg(long, default_value = "sidecar-injector")]
        service_namespace: String,
        /// The object's name.
        #[arg(long, default_value = sidecar_injector::engine::registration::CONFIGURATION_NAME)]
        name: String,
        /// `yaml`, or `json` for a program to read.
        #[arg(short, long, default_value = "yaml", value_parser = ["yaml", "json"])]
        output: String,
    },
    /// Serve the webhook over HTTPS (POST /mutate, GET /healthz, GET /readyz), with Prometheus
    /// metrics on a separate plain-HTTP port (GET /metrics).
    ///
    /// With no flags it listens on 127.0.0.1:8443 with the built-in configuration and a
    /// certificate for localhost made at start, and prints a curl command to try it.
    #[cfg(feature = "server")]
    Serve(Box<serve::ServeArgs>),
    /// Write a CA, a serving certificate for a Service, a TLS Secret manifest and the matching
    /// caBundle, for clusters where nothing should be patched at run time.
    #[cfg(feature = "server")]
    Certs(serve::CertsArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file; the error names the path of the bad field. Also says, for
    /// each profile, the highest Pod Security level its additions can keep.
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Fail unless every profile can keep this Pod Security level (privileged, baseline,
        /// restricted).
        #[arg(long, value_name = "LEVEL")]
        require: Option<Level>,
    },
    /// Print the built-in configuration.
    Default,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "audit")]
    if let Command::Audit(args) = cli.command {
        return audit::audit(*args);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sidecar-injector: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Review { config, explain, file } => {
            let config = load_config(config.as_deref())?;
            let body = read_input(file.as_deref().unwrap_or(Path::new("-")))?;
            let reviewed = review(&body, &config).map_err(|e| e.to_string())?;
            if explain {
                explain_review(&reviewed);
            }
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&reviewed.body)
                .and_then(|()| stdout.write_all(b"\n"))
                .map_err(|e| format!("writing the response: {e}"))
        }
        Command::Inject { config, file, namespace } => {
            let config = load_config(config.as_deref())?;
            let input = read_input(&file)?;
            let text = String::from_utf8(input).map_err(|_| format!("{}: not UTF-8 text", file.display()))?;
            match manifests::inject(&text, &config, &namespace) {
                Ok(injected) => {
                    injected.notes.iter().for_each(|note| eprintln!("{note}"));
                    print!("{}", injected.yaml);
                    Ok(())
                }
                // Nothing is printed on stdout: a pipeline must not apply half a file.
                Err(manifests::ManifestError::Refused { refused, notes }) => {
                    notes.iter().for_each(|note| eprintln!("{note}"));
                    refused.iter().for_each(|refused| eprintln!("refused: {refused}"));
                    Err(format!(
                        "{}: {} of its documents refused, nothing written",
                        file.display(),
                        refused.len()
                    ))
                }
                Err(error) => Err(error.to_string()),
            }
        }
        Command::Config(ConfigCommand::Check { file, require }) => config_check(&file, require),
        Command::WebhookConfig { config, url, service_namespace, name, output } => {
            webhook_config(config.as_deref(), url, service_namespace, &name, &output)
        }
        Command::Config(ConfigCommand::Default) => {
            print!("{BUILTIN_YAML}");
            Ok(())
        }
        #[cfg(feature = "audit")]
        Command::Audit(_) => unreachable!("main runs audit for its exit status"),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve::serve(*args),
        #[cfg(feature = "heal")]
        Command::Heal(args) => heal::heal(*args),
        #[cfg(feature = "server")]
        Command::Certs(args) => serve::certs(args),
    }
}

/// `config check`: the file checked, then each profile's Pod Security level, held to `require`.
fn config_check(file: &Path, require: Option<Level>) -> Result<(), String> {
    let config = load_config(Some(file))?;
    let names: Vec<&str> = config.profile_names().collect();
    println!(
        "{}: valid; profiles: {}",
        file.display(),
        if names.is_empty() { "none".into() } else { names.join(", ") }
    );
    let mut below = Vec::new();
    for (profile, level, why) in config.pod_security_levels() {
        if why.is_empty() {
            println!("profile {profile}: keeps {level}");
        } else {
            println!("profile {profile}: at most {level} ({})", why.join("; "));
        }
        if require.is_some_and(|required| level < required) {
            below.push(profile.to_owned());
        }
    }
    match require {
        Some(required) if !below.is_empty() => {
            Err(format!("{}: below {required}: {}", file.display(), below.join(", ")))
        }
        _ => Ok(()),
    }
}

/// `webhook-config`: the registration for a configuration, saying when its conditions were broadened.
fn webhook_config(
    config: Option<&Path>,
    url: Option<String>,
    service_namespace: String,
    name: &str,
    output: &str,
) -> Result<(), String> {
    let config = load_config(config)?;
    let client = match url {
        Some(url) => Client::Url(url),
        None => Client::Service { namespace: service_namespace, name: "sidecar-injector".into() },
    };
    if let Some(why) = match_conditions(&config).broadened {
        eprintln!("sidecar-injector: matchConditions broadened: {why}");
    }
    let mut object = webhook_configuration(&config, &client);
    object["metadata"]["name"] = name.into();
    match output {
        "json" => println!("{}", serde_json::to_string_pretty(&object).expect("JSON values serialize")),
        _ => print!("{}", serde_saphyr::to_string(&object).map_err(|e| format!("writing YAML: {e}"))?),
    }
    Ok(())
}

fn load_config(path: Option<&Path>) -> Result<Config, String> {
    match path {
        None => Ok(Config::builtin()),
        Some(path) => config_file::parse(path, &read_input(path)?).map_err(|e| e.to_string()),
    }
}

fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("reading stdin: {e}"))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn explain_review(reviewed: &sidecar_injector::Reviewed) {
    let summary = &reviewed.summary;
    eprintln!(
        "{} {} {}/{}: {}",
        summary.operation, summary.kind, summary.namespace, summary.name, summary.decision
    );
    for chosen in &reviewed.chosen {
        eprintln!("profile {}: {}", chosen.profile, chosen.rule);
    }
    if let Some(security) = reviewed.pod_security {
        eprintln!("pod security: {} before, {} injected", security.before, security.injected);
    }
    for warning in &reviewed.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(patch) = reviewed.operations() {
        eprintln!("patch:\n{}", serde_json::to_string_pretty(&patch).expect("patches always serialize"));
    }
}
