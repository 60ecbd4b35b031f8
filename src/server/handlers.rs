//! The routes: `POST /mutate` runs the pure function; `/healthz` and `/readyz` are the probes;
//! `/metrics` lives on its own plain-HTTP listener.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Router};
use tower::ServiceBuilder;

use super::state::AppState;
use crate::{Decision, review};

/// The route the webhook configuration points at.
pub const MUTATE_PATH: &str = "/mutate";

/// The API server refuses request bodies over 3 MiB, so a review can never be larger.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Bounds on the work one server takes on.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Reviews answered at once; more are refused at once with 503 rather than queued, so that
    /// the API server's retry or `failurePolicy` decides, instead of a queue growing unseen.
    pub max_in_flight: usize,
    /// The longest a request may take, body upload included.
    pub request_timeout: Duration,
}

/// The HTTPS routes.
pub fn router(state: Arc<AppState>, limits: Limits) -> Router {
    let guard = ServiceBuilder::new()
        .layer(HandleErrorLayer::new({
            let state = state.clone();
            move |error: BoxError| {
                let state = state.clone();
                async move { overloaded(&state, error) }
            }
        }))
        .load_shed()
        .concurrency_limit(limits.max_in_flight)
        .timeout(limits.request_timeout);
    Router::new()
        .route(MUTATE_PATH, post(mutate).layer::<_, Infallible>(guard).layer(DefaultBodyLimit::max(MAX_BODY)))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// The metrics route, served on its own port so that it never needs a certificate.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<Arc<AppState>>| async move {
                let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                ([(header::CONTENT_TYPE, content_type)], state.metrics.encode())
            }),
        )
        .with_state(state)
}

fn overloaded(state: &AppState, error: BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        state.metrics.shed();
        return (StatusCode::SERVICE_UNAVAILABLE, "too many reviews in flight, try again\n").into_response();
    }
    if error.is::<tower::timeout::error::Elapsed>() {
        return (StatusCode::REQUEST_TIMEOUT, "the request took too long\n").into_response();
    }
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn mutate(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_json(&headers) {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "an AdmissionReview is sent as application/json\n")
            .into_response();
    }
    let started = Instant::now();
    let config = state.config.load();
    match review(&body, &config) {
        Ok(reviewed) => {
            let elapsed = started.elapsed();
            state.metrics.review(&reviewed.summary.decision, elapsed.as_secs_f64());
            let s = &reviewed.summary;
            let reason = match &s.decision {
                Decision::Skipped(reason) => reason.as_str(),
                _ => "",
            };
            // Never the body: Pods carry secrets in env vars.
            tracing::info!(
                uid = %s.uid, kind = %s.kind, namespace = %s.namespace, name = %s.name,
                operation = %s.operation, decision = s.decision.as_str(), reason,
                latency_us = elapsed.as_micros() as u64, "review"
            );
            ([(header::CONTENT_TYPE, "application/json")], reviewed.body).into_response()
        }
        Err(error) => {
            state.metrics.review_error();
            let message = error.to_string();
            tracing::warn!(decision = "error", error = %truncate(&message, 300), "review refused");
            (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}
