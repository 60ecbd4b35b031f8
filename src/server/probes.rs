//! `/healthz`, `/readyz` and `/metrics` on a listener, thread and runtime of their own, so that a
//! probe's answer never waits behind reviews: under overload the review runtime's queues are
//! full, and the kubelet would restart a replica that is only busy.
//!
//! Liveness still means "the review path works": the review runtime beats a [`Heartbeat`] every
//! [`BEAT`], and `/healthz` fails once the last beat is older than the liveness window, which is
//! what a wedged runtime (every worker blocked) looks like.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::state::AppState;

/// How often the review runtime beats.
pub const BEAT: Duration = Duration::from_millis(500);

/// Beat until the task is aborted; spawned on the review runtime.
pub async fn beat(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(BEAT);
    loop {
        tick.tick().await;
        state.heartbeat.beat();
    }
}

/// 200 while the review runtime beats, 503 once it has not for the liveness window.
pub async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let age = state.heartbeat.age();
    if age <= state.liveness_window {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        let message = format!("the review runtime has not run for {:.1} s\n", age.as_secs_f64());
        (StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// The probe and metrics routes, plain HTTP: a probe must never depend on a certificate.
fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(state): State<Arc<AppState>>| async move {
                let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                ([(header::CONTENT_TYPE, content_type)], state.metrics.encode())
            }),
        )
        .with_state(state)
}

/// The probe thread, serving until [`Probes::stop`].
pub struct Probes {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Probes {
    /// Serve the probe routes on `listener` from a thread with a runtime of its own.
    pub fn spawn(listener: std::net::TcpListener, state: Arc<AppState>) -> std::io::Result<Probes> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("probes".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    tracing::error!("the probe listener could not be used");
                    return;
                };
                let stopped = async {
                    let _ = stopped.await;
                };
                let served = axum::serve(listener, router(state)).with_graceful_shutdown(stopped).await;
                if let Err(error) = served {
                    tracing::error!(%error, "the probe listener failed");
                }
            })
        })?;
        Ok(Probes { stop, thread })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}
