//! `sidecar-injector-lambda`: the webhook on AWS Lambda, behind a Function URL.
//!
//! At cold start it reads the configuration and the token; anything wrong there fails the init
//! with a log line, so the function never serves half a configuration.
//! - configuration: the file named by `SIDECAR_INJECTOR_CONFIG_FILE`, else `config.yaml` shipped
//!   beside the binary in the zip, else the built-in one;
//! - token: `SIDECAR_INJECTOR_TOKEN`.

use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};
use sidecar_injector::Config;
use sidecar_injector::lambda::Lambda;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    sidecar_injector::logging::init();
    let lambda = match cold_start() {
        Ok(lambda) => Arc::new(lambda),
        Err(error) => {
            tracing::error!(%error, "cold start failed");
            return Err(error.into());
        }
    };
    tracing::info!(profiles = ?lambda.config.profile_names().collect::<Vec<_>>(), "ready");
    lambda_http::run(service_fn(move |request: Request| {
        let lambda = lambda.clone();
        async move { Ok::<_, Error>(lambda.handle(&request)) }
    }))
    .await
}

fn cold_start() -> Result<Lambda, String> {
    let shipped = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("config.yaml")));
    let file =
        std::env::var_os("SIDECAR_INJECTOR_CONFIG_FILE").map(Into::into).or(shipped.filter(|p| p.exists()));
    let config = match file {
        Some(path) => {
            let path: std::path::PathBuf = path;
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Config::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Config::builtin(),
    };
    let token = std::env::var("SIDECAR_INJECTOR_TOKEN")
        .map_err(|_| "SIDECAR_INJECTOR_TOKEN is not set".to_owned())?;
    Lambda::new(config, &token).map_err(str::to_owned)
}
