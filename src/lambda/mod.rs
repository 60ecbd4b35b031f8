//! The Lambda adapter: the engine behind a Lambda Function URL.
//!
//! A Function URL with auth type NONE is public, and a webhook `url` may carry neither credentials
//! nor a query string, so a secret token in the path is what keeps strangers out:
//! `POST /mutate/{token}`. The token is compared in constant time and checked before anything
//! else, so a wrong one gets 404 whatever the body, and nothing tells a prober what exists. During
//! a rotation two tokens are accepted, the new one and the one it replaces (docs/lambda.md).
//! Everything after the token check is [`http::answer`], the server's own code: the same status,
//! headers and body for a review and for a wrong method, type or size.
//!
//! At cold start ([`cold_start`]) the function reads its configuration and token, from SSM
//! Parameter Store when parameters are named, else from a file and the environment. Anything
//! wrong fails the init with a log line: it never serves half a configuration.

use std::time::Instant;

use lambda_http::{Body, Request, Response};
use subtle::ConstantTimeEq;

mod cold_start;

pub use cold_start::cold_start;

use crate::engine::http_answer as http;
use crate::{Config, logging};

/// The route prefix; the token follows it.
pub const ROUTE: &str = "/mutate/";

/// At most this many tokens at once: the current one and the one a rotation retires.
pub const MAX_TOKENS: usize = 2;

/// What the function holds from cold start on.
pub struct Lambda {
    pub config: Config,
    tokens: Vec<Vec<u8>>,
}

impl Lambda {
    /// `tokens` holds one token per line: one, or during a rotation the new one and the old one.
    /// A short token could be guessed (an empty one would let `/mutate/` in), so fewer than 16
    /// characters are refused.
    ///
    /// ```
    /// # use sidecar_injector::{Config, lambda::Lambda};
    /// assert!(Lambda::new(Config::builtin(), "0123456789abcdef\nfedcba9876543210").is_ok());
    /// assert!(Lambda::new(Config::builtin(), "0123456789abcdef\nshort").is_err());
    /// ```
    pub fn new(config: Config, tokens: &str) -> Result<Lambda, String> {
        let tokens: Vec<&str> = tokens.lines().map(str::trim).filter(|t| !t.is_empty()).collect();
        if tokens.is_empty() || tokens.len() > MAX_TOKENS {
            return Err(format!(
                "there must be 1 to {MAX_TOKENS} tokens, one per line; found {}",
                tokens.len()
            ));
        }
        if let Some(line) = tokens.iter().position(|t| t.len() < 16) {
            return Err(format!("token {} of {} is shorter than 16 characters", line + 1, tokens.len()));
        }
        Ok(Lambda { config, tokens: tokens.iter().map(|t| t.as_bytes().to_vec()).collect() })
    }

    /// Whether `candidate` is one of the tokens: each is compared in constant time, all of them
    /// every time, so that the answer's timing says nothing about which one nearly matched.
    fn accepts(&self, candidate: &[u8]) -> bool {
        let matched =
            self.tokens.iter().fold(subtle::Choice::from(0), |any, token| any | candidate.ct_eq(token));
        matched.into()
    }

    /// Answer one Function URL request.
    pub fn handle(&self, request: &Request) -> Response<Body> {
        let token = request.uri().path().strip_prefix(ROUTE).unwrap_or_default();
        if !self.accepts(token.as_bytes()) {
            // Never log the path: it may hold a token, right or nearly right.
            tracing::warn!(status = 404, "request refused: wrong or missing token");
            return respond(404, "text/plain; charset=utf-8", b"not found\n".to_vec());
        }
        let started = Instant::now();
        // lambda_http has already decoded an `isBase64Encoded` body into bytes.
        let body: &[u8] = match request.body() {
            Body::Empty => &[],
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        };
        let request = http::HttpRequest {
            method: request.method().as_str(),
            content_type: request.headers().get("content-type").and_then(|v| v.to_str().ok()),
            body: Some(body),
        };
        let answer = http::answer(request, &self.config);
        logging::answered(&answer, started.elapsed());
        let (status, content_type, allow) = (answer.status, answer.content_type, answer.allow);
        let mut response = respond(status, content_type, answer.into_body());
        if let Some(allow) = allow {
            response.headers_mut().insert("allow", lambda_http::http::HeaderValue::from_static(allow));
        }
        response
    }
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let response = Response::builder().status(status).header("content-type", content_type);
    response.body(Body::Binary(body)).expect("status and headers are valid")
}
