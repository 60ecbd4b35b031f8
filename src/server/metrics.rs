//! Prometheus metrics, served as text on the plain-HTTP metrics port.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

use crate::Decision;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviewLabels {
    /// `injected`, `skipped`, `denied`, or `error` for a body that was not a review.
    decision: &'static str,
    /// Why it was skipped; empty otherwise.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    /// What the TLS handshake agreed on (ALPN): `h2`, `http/1.1`, or `none` when the client
    /// offered neither (the server then reads the protocol from the first bytes).
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    /// `success` or `failure`.
    result: &'static str,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    reviews: Family<ReviewLabels, Counter>,
    /// The series of `reviews` that nearly every review counts in, held so that counting one does
    /// not hash and look up its labels.
    injected: Counter,
    latency: Histogram,
    shed: Counter,
    refused_connections: Counter,
    evicted_connections: Counter,
    open_connections: Gauge,
    requests_in_flight: Gauge,
    connections: Family<ConnectionLabels, Counter>,
    config_reloads: Family<ReloadLabels, Counter>,
    cert_reloads: Family<ReloadLabels, Counter>,
    cert_expiry: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sidecar_injector");
        let r = &mut registry;
        let reviews: Family<ReviewLabels, Counter> =
            registered(r, "reviews", "AdmissionReviews answered, by decision and skip reason");
        let injected =
            reviews.get_or_create(&review_labels(&Decision::Injected { profiles: vec![] })).clone();
        // A review takes tens of microseconds: the buckets start well below a millisecond.
        let latency = Histogram::new([
            0.000_025, 0.000_05, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
        ]);
        let help = "Time to answer one AdmissionReview, body read excluded";
        r.register("review_duration_seconds", help, latency.clone());
        Metrics {
            reviews,
            injected,
            latency,
            shed: registered(r, "shed_requests", "Requests answered 503 because too many were in flight"),
            refused_connections: registered(
                r,
                "refused_connections",
                "Connections closed at once: past --max-connections-per-client, or at --max-connections with every connection mid-request",
            ),
            evicted_connections: registered(
                r,
                "evicted_connections",
                "Idle connections closed at --max-connections to make room for a new one: of the client holding the most",
            ),
            open_connections: registered(r, "open_connections", "Connections being served"),
            requests_in_flight: registered(
                r,
                "requests_in_flight",
                "Requests being answered, body reads included; a connection with one is never evicted",
            ),
            // Which protocol the API server calls with decides which timeouts apply (docs/cluster.md, "The server").
            connections: registered(
                r,
                "connections",
                "Connections that completed their TLS handshake, by the protocol it agreed on",
            ),
            config_reloads: registered(
                r,
                "config_reloads",
                "Configuration reloads; a failed one keeps the previous configuration",
            ),
            cert_reloads: registered(
                r,
                "certificate_reloads",
                "Serving certificate reloads; a failed one keeps the previous certificate",
            ),
            cert_expiry: registered(
                r,
                "serving_certificate_expiry_timestamp_seconds",
                "notAfter of the certificate being served",
            ),
            registry,
        }
    }
}

/// A new metric of its kind, registered under `name` (the reconciler's metrics too).
pub(crate) fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    pub fn review(&self, decision: &Decision, seconds: f64) {
        match decision {
            Decision::Injected { .. } => self.injected.inc(),
            _ => self.reviews.get_or_create(&review_labels(decision)).inc(),
        };
        self.latency.observe(seconds);
    }

    pub fn review_error(&self) {
        self.reviews.get_or_create(&ReviewLabels { decision: "error", reason: "" }).inc();
    }

    pub fn shed(&self) {
        self.shed.inc();
    }

    pub fn refused_connection(&self) {
        self.refused_connections.inc();
    }

    pub fn evicted_connection(&self) {
        self.evicted_connections.inc();
    }

    /// One request more (`1`) or fewer (`-1`) being answered.
    pub fn requests_in_flight(&self, change: i64) {
        self.requests_in_flight.inc_by(change);
    }

    /// One connection more (`1`) or fewer (`-1`) being served.
    pub fn open_connections(&self, change: i64) {
        self.open_connections.inc_by(change);
    }

    /// A connection through its TLS handshake, which agreed on `alpn`.
    pub fn connection(&self, alpn: Option<&[u8]>) {
        let protocol = match alpn {
            Some(b"h2") => "h2",
            Some(b"http/1.1") => "http/1.1",
            // We offer only those two, so a handshake agrees on one of them or on none.
            _ => "none",
        };
        self.connections.get_or_create(&ConnectionLabels { protocol }).inc();
    }

    pub fn config_reload(&self, ok: bool) {
        self.config_reloads.get_or_create(&ReloadLabels { result: result(ok) }).inc();
    }

    pub fn cert_reload(&self, ok: bool) {
        self.cert_reloads.get_or_create(&ReloadLabels { result: result(ok) }).inc();
    }

    pub fn cert_expiry(&self, not_after: i64) {
        self.cert_expiry.set(not_after);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

fn review_labels(decision: &Decision) -> ReviewLabels {
    ReviewLabels { decision: decision.as_str(), reason: decision.reason() }
}

fn result(ok: bool) -> &'static str {
    if ok { "success" } else { "failure" }
}
