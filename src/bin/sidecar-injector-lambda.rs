//! `sidecar-injector-lambda`: the webhook on AWS Lambda, behind a Function URL. See
//! [`sidecar_injector::lambda`] for the route, the token and where the configuration comes from.

#![warn(clippy::too_many_lines)]

use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    sidecar_injector::logging::init();
    let lambda = match sidecar_injector::lambda::cold_start().await {
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
