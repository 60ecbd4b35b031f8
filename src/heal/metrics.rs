//! What the reconciler says in numbers, and its probes, on a plain-HTTP port: `/metrics`,
//! `/healthz` (the reconcile loop has ticked lately) and `/readyz` (its Pods are listed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::server::metrics::registered;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodLabels {
    namespace: String,
    /// `missed` or `stale`.
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    /// `started`, `succeeded` or `failed`.
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    /// What a person should do instead: `re-create by hand`, `inject the manifest again`, ….
    action: &'static str,
}

/// Every metric the reconciler exports, and what its probes read.
pub struct HealMetrics {
    registry: Registry,
    pods: Family<PodLabels, Gauge>,
    restarts: Family<ResultLabels, Counter>,
    time_to_current: Histogram,
    in_progress: Gauge,
    halted: Gauge,
    leader: Gauge,
    left_alone: Family<ActionLabels, Counter>,
    relists: Counter,
    steps: Counter,
    webhook_ready: Gauge,
    /// Milliseconds since `origin` at the loop's last tick.
    ticked_ms: AtomicU64,
    origin: Instant,
    listed: AtomicBool,
}

impl Default for HealMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sidecar_injector_heal");
        let r = &mut registry;
        // Minutes to hours: a rollout waits for its Pods to become Ready.
        let time_to_current =
            Histogram::new([5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0]);
        r.register(
            "time_to_current_seconds",
            "From a workload's first missed or stale Pod seen to its restart's success",
            time_to_current.clone(),
        );
        HealMetrics {
            pods: registered(r, "pods", "Missed and stale Pods, by namespace and class"),
            restarts: registered(r, "restarts", "Workload restarts, by result"),
            time_to_current,
            in_progress: registered(r, "in_progress", "Workloads restarted and still rolling out"),
            halted: registered(r, "halted", "1 while the waves are stopped by failures in a row"),
            leader: registered(r, "leader", "1 on the replica that holds the Lease and acts"),
            left_alone: registered(
                r,
                "left_alone",
                "Workloads left behind and not restarted, by the action a person should take",
            ),
            relists: registered(r, "relists", "Times the Pod watch started over with a full list"),
            steps: registered(
                r,
                "steps",
                "Wave steps taken: one a second on the leader, once its Pods are listed",
            ),
            webhook_ready: registered(
                r,
                "webhook_ready",
                "1 while the webhook answers a restarted Pod as this configuration would",
            ),
            ticked_ms: AtomicU64::new(0),
            origin: Instant::now(),
            listed: AtomicBool::new(false),
            registry,
        }
    }
}

impl HealMetrics {
    /// The missed and stale Pods of each namespace, replacing the last count.
    pub fn pods(&self, by_namespace: &std::collections::BTreeMap<&str, (usize, usize)>) {
        self.pods.clear();
        for (namespace, (missed, stale)) in by_namespace {
            for (class, count) in [("missed", missed), ("stale", stale)] {
                let labels = PodLabels { namespace: (*namespace).to_owned(), class };
                self.pods.get_or_create(&labels).set(i64::try_from(*count).unwrap_or(i64::MAX));
            }
        }
    }

    pub fn restart(&self, result: &'static str) {
        self.restarts.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn current_after(&self, behind: Duration) {
        self.time_to_current.observe(behind.as_secs_f64());
    }

    pub fn in_progress(&self, count: usize) {
        self.in_progress.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn halted(&self, halted: bool) {
        self.halted.set(i64::from(halted));
    }

    pub fn leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    pub fn left_alone(&self, action: &'static str) {
        self.left_alone.get_or_create(&ActionLabels { action }).inc();
    }

    pub fn relisted(&self) {
        self.relists.inc();
    }

    pub fn stepped(&self) {
        self.steps.inc();
    }

    pub fn webhook_ready(&self, ready: bool) {
        self.webhook_ready.set(i64::from(ready));
    }

    pub fn ticked(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.ticked_ms.store(ms, Ordering::Relaxed);
    }

    pub fn set_listed(&self, listed: bool) {
        self.listed.store(listed, Ordering::Relaxed);
    }

    fn tick_age(&self) -> Duration {
        let last = Duration::from_millis(self.ticked_ms.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }

    fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// The loop ticks every second or so; this long without one is a wedge.
const STUCK: Duration = Duration::from_secs(30);

/// `/metrics`, `/healthz` and `/readyz`.
pub fn router(metrics: Arc<HealMetrics>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|State(m): State<Arc<HealMetrics>>| async move {
                let age = m.tick_age();
                if age <= STUCK {
                    (StatusCode::OK, "ok\n".to_owned())
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("the reconcile loop has not run for {:.0} s\n", age.as_secs_f64()),
                    )
                }
            }),
        )
        .route(
            "/readyz",
            get(|State(m): State<Arc<HealMetrics>>| async move {
                if m.listed.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "listing Pods\n")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(m): State<Arc<HealMetrics>>| async move {
                let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                ([(header::CONTENT_TYPE, content_type)], m.encode())
            }),
        )
        .with_state(metrics)
}
