//! The HTTPS routes: `/mutate` runs the pure function; `/healthz` and `/readyz` answer here too,
//! but the Deployment probes the plain-HTTP listener of `probes`, which overload cannot starve.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{BoxError, Router};
use tower::ServiceBuilder;

use super::probes;
use super::state::AppState;
use crate::engine::http_answer as http;
use crate::logging;

/// The route the webhook configuration points at.
pub use crate::engine::registration::MUTATE_PATH;

pub use crate::engine::http_answer::MAX_BODY;

/// Bounds on the work one server takes on.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Reviews answered at once; more are refused at once with 503 rather than queued, so that
    /// the API server's retry or `failurePolicy` decides, instead of a queue growing unseen.
    pub max_in_flight: usize,
    /// The longest a request may take, body upload included.
    pub request_timeout: Duration,
}

/// The HTTPS routes; with `wedge`, also `POST /testing/wedge` (see [`wedge_the_runtime`]).
pub fn router(state: Arc<AppState>, limits: Limits, wedge: bool) -> Router {
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
    let router = Router::new()
        // Every method, and no body limit of axum's: the engine's one edge answers them all, as in
        // the Lambda.
        .route(MUTATE_PATH, any(mutate).layer::<_, Infallible>(guard).layer(DefaultBodyLimit::disable()))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz));
    let router = if wedge { router.route("/testing/wedge", post(wedge_the_runtime)) } else { router };
    router.with_state(state)
}

/// For the overload test only: block every worker of the review runtime for 8 s, to show that
/// liveness then fails. Only served with `serve --testing-wedge`.
async fn wedge_the_runtime() -> &'static str {
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    for _ in 0..workers {
        tokio::spawn(async { std::thread::sleep(Duration::from_secs(8)) });
    }
    "wedged\n"
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

// The request whole, not axum's `Method` and `HeaderMap` extractors: those clone what they
// extract, and the header map is an allocation per review for one header read.
async fn mutate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // A review runs in one poll, so without this the in-flight limit would count only the reviews
    // being computed right now, never more than the worker threads. Yielding once lets every
    // connection with a request ready take a place first: the limit then bounds the queue of
    // requests waiting for the CPU, and overload is answered with fast 503s, not growing latency.
    tokio::task::yield_now().await;
    // Read no more than the limit; past it the engine answers 413 as the Lambda does.
    let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_BODY)).await {
        Ok(collected) => Some(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => None,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("the body could not be read: {error}\n"))
                .into_response();
        }
    };
    let started = Instant::now();
    let request = http::HttpRequest {
        method: parts.method.as_str(),
        content_type: parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        body: body.as_deref(),
    };
    let answer = http::answer(request, &state.config.load());
    let elapsed = started.elapsed();
    match answer.reviewed() {
        Some(reviewed) => state.metrics.review(&reviewed.summary.decision, elapsed.as_secs_f64()),
        None => state.metrics.review_error(),
    }
    logging::answered(&answer, elapsed);
    let status = StatusCode::from_u16(answer.status).expect("http::answer gives valid statuses");
    let (content_type, allow) = (answer.content_type, answer.allow);
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], answer.into_body()).into_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    response
}
