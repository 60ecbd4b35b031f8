//! The Lambda adapter: the engine behind a Lambda Function URL.
//!
//! A Function URL with auth type NONE is public, and a webhook `url` may carry neither credentials
//! nor a query string, so a secret token in the path is what keeps strangers out:
//! `POST /mutate/{token}`. The token is compared in constant time and checked before anything
//! else, so a wrong one gets 404 whatever the body, and nothing tells a prober what exists.
//! Everything after the token check is [`http::answer`], the server's own code.
//!
//! At cold start ([`cold_start`]) the function reads its configuration and token, from SSM
//! Parameter Store when parameters are named, else from a file and the environment. Anything
//! wrong fails the init with a log line: it never serves half a configuration.

use std::time::Instant;

use lambda_http::{Body, Request, Response};
use subtle::ConstantTimeEq;

use crate::engine::http_answer as http;
use crate::{Config, config_file, logging};

/// The route prefix; the token follows it.
pub const ROUTE: &str = "/mutate/";

/// What the function holds from cold start on.
pub struct Lambda {
    pub config: Config,
    token: Vec<u8>,
}

impl Lambda {
    /// A short token could be guessed (an empty one would let `/mutate/` in), so fewer than 16
    /// characters are refused.
    pub fn new(config: Config, token: &str) -> Result<Lambda, &'static str> {
        if token.len() < 16 {
            return Err("the token must be at least 16 characters");
        }
        Ok(Lambda { config, token: token.as_bytes().to_vec() })
    }

    /// Answer one Function URL request.
    pub fn handle(&self, request: &Request) -> Response<Body> {
        let token = request.uri().path().strip_prefix(ROUTE).unwrap_or_default();
        if !bool::from(token.as_bytes().ct_eq(&self.token)) {
            // Never log the path: it may hold a token, right or nearly right.
            tracing::warn!(status = 404, "request refused: wrong or missing token");
            return respond(404, "text/plain; charset=utf-8", b"not found\n".to_vec());
        }
        if request.method() != lambda_http::http::Method::POST {
            return respond(405, "text/plain; charset=utf-8", b"only POST\n".to_vec());
        }
        let started = Instant::now();
        let content_type = request.headers().get("content-type").and_then(|v| v.to_str().ok());
        // lambda_http has already decoded an `isBase64Encoded` body into bytes.
        let body: &[u8] = match request.body() {
            Body::Empty => &[],
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        };
        let answer = http::answer(content_type, body, &self.config);
        match &answer.reviewed {
            Some(reviewed) => logging::review(&reviewed.summary, started.elapsed()),
            None => logging::refused(answer.status, &answer.body),
        }
        respond(answer.status, answer.content_type, answer.body)
    }
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::builder().status(status).header("content-type", content_type);
    if status == 405 {
        response = response.header("allow", "POST");
    }
    response.body(Body::Binary(body)).expect("status and headers are valid")
}

/// Where the configuration and the token come from, as named by the environment:
/// - `SIDECAR_INJECTOR_CONFIG_PARAMETER`: an SSM parameter holding the configuration; else
///   `SIDECAR_INJECTOR_CONFIG_FILE`; else `config.yaml` beside the binary (shipped in the zip);
///   else the built-in configuration;
/// - `SIDECAR_INJECTOR_TOKEN_PARAMETER`: an SSM SecureString holding the token; else
///   `SIDECAR_INJECTOR_TOKEN`.
pub async fn cold_start() -> Result<Lambda, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let config_parameter = var("SIDECAR_INJECTOR_CONFIG_PARAMETER");
    let token_parameter = var("SIDECAR_INJECTOR_TOKEN_PARAMETER");
    let ssm = match (&config_parameter, &token_parameter) {
        (None, None) => None,
        _ => Some(aws_sdk_ssm::Client::new(&aws_config::load_from_env().await)),
    };

    let config = match (&ssm, config_parameter) {
        (Some(ssm), Some(name)) => {
            let text = parameter(ssm, &name).await?;
            Config::from_yaml(&text).map_err(|e| format!("SSM parameter {name}: {e}"))?
        }
        _ => {
            let shipped =
                std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("config.yaml")));
            match var("SIDECAR_INJECTOR_CONFIG_FILE")
                .map(std::path::PathBuf::from)
                .or(shipped.filter(|p| p.exists()))
            {
                Some(path) => config_file::load(&path).map_err(|e| e.to_string())?,
                None => Config::builtin(),
            }
        }
    };
    let token = match (&ssm, token_parameter) {
        (Some(ssm), Some(name)) => parameter(ssm, &name).await?,
        _ => var("SIDECAR_INJECTOR_TOKEN")
            .ok_or("neither SIDECAR_INJECTOR_TOKEN_PARAMETER nor SIDECAR_INJECTOR_TOKEN is set")?,
    };
    Lambda::new(config, token.trim()).map_err(str::to_owned)
}

/// One parameter's value, decrypted if it is a SecureString.
async fn parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String, String> {
    let output = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| format!("SSM parameter {name}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)))?;
    output.parameter.and_then(|p| p.value).ok_or_else(|| format!("SSM parameter {name} has no value"))
}
