//! Self-managed certificates against a stub Kubernetes API on loopback: the CA Secret race, the
//! exact caBundle apply request, two replicas sharing one CA, and a CA rotation that keeps both
//! CAs in the bundle.
#![cfg(feature = "server")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::runtime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use sidecar_injector::Config;
use sidecar_injector::engine::registration::match_conditions;
use sidecar_injector::server::certs::Ca;
use sidecar_injector::server::certs::Loaded;
use sidecar_injector::server::{FIELD_MANAGER, Limits, Managed, Options, SelfManaged, Server, TlsSource};

const NAMESPACE: &str = "sidecar-injector";
const SERVICE: &str = "sidecar-injector";
const SECRET: &str = "sidecar-injector-ca";
const CONFIGURATION: &str = "sidecar-injector";
const WEBHOOK: &str = "inject.sidecar-injector.io";

/// One request the stub received.
#[derive(Debug, Clone)]
struct Seen {
    method: &'static str,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

#[derive(Default)]
struct Stub {
    secrets: BTreeMap<String, Value>,
    seen: Vec<Seen>,
    /// A Secret another replica creates just before our first create arrives.
    race_winner: Option<Value>,
    version: u64,
}

type Shared = Arc<Mutex<Stub>>;

fn status(code: u16, reason: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason});
    json_response(StatusCode::from_u16(code).unwrap(), &body)
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (code, [("content-type", "application/json")], body.to_string()).into_response()
}

fn record(
    stub: &Shared,
    method: &'static str,
    path: String,
    query: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) {
    let content_type =
        headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    stub.lock().unwrap().seen.push(Seen {
        method,
        path,
        query: query.unwrap_or_default(),
        content_type,
        body,
    });
}

async fn get_secret(
    State(stub): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    record(&stub, "GET", format!("/api/v1/namespaces/{ns}/secrets/{name}"), None, &headers, b"");
    match stub.lock().unwrap().secrets.get(&name) {
        Some(secret) => json_response(StatusCode::OK, secret),
        None => status(404, "NotFound"),
    }
}

async fn create_secret(
    State(stub): State<Shared>,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&stub, "POST", format!("/api/v1/namespaces/{ns}/secrets"), None, &headers, &body);
    let mut stub = stub.lock().unwrap();
    if let Some(winner) = stub.race_winner.take() {
        stub.secrets.insert(SECRET.into(), winner);
    }
    let mut secret: Value = serde_json::from_slice(&body).unwrap();
    let name = secret["metadata"]["name"].as_str().unwrap().to_owned();
    if stub.secrets.contains_key(&name) {
        return status(409, "AlreadyExists");
    }
    stub.version += 1;
    secret["metadata"]["resourceVersion"] = json!(stub.version.to_string());
    stub.secrets.insert(name, secret.clone());
    json_response(StatusCode::CREATED, &secret)
}

async fn apply_configuration(
    State(stub): State<Shared>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}");
    record(&stub, "PATCH", path, query, &headers, &body);
    let mut applied: Value = serde_json::from_slice(&body).unwrap();
    applied["metadata"]["resourceVersion"] = json!("1");
    json_response(StatusCode::OK, &applied)
}

async fn start_stub(stub: Shared) -> SocketAddr {
    let app = Router::new()
        .route("/api/v1/namespaces/{ns}/secrets/{name}", get(get_secret))
        .route("/api/v1/namespaces/{ns}/secrets", post(create_secret))
        .route(
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}",
            patch(apply_configuration),
        )
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn settings(kube: kube::Config, namespace: &str, configuration: &str, ca_validity: Duration) -> SelfManaged {
    SelfManaged {
        kube,
        namespace: namespace.into(),
        service: SERVICE.into(),
        ca_secret: SECRET.into(),
        webhook_configuration: configuration.into(),
        webhooks: vec![WEBHOOK.into()],
        serving_validity: Duration::from_secs(3600),
        ca_validity,
        resync: Duration::from_millis(100),
    }
}

fn options(managed: SelfManaged) -> Options {
    Options {
        listen: ([127, 0, 0, 1], 0).into(),
        metrics_listen: ([127, 0, 0, 1], 0).into(),
        tls: TlsSource::SelfManaged(Box::new(managed)),
        config: None,
        reload_interval: Duration::from_millis(50),
        limits: Limits { max_in_flight: 16, request_timeout: Duration::from_secs(5) },
        header_read_timeout: Duration::from_secs(2),
        drain_delay: Duration::ZERO,
        shutdown_timeout: Duration::from_secs(5),
        ..Options::local()
    }
}

fn secret_with(ca: &Ca) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": NAMESPACE, "resourceVersion": "100"},
        "type": "Opaque",
        "data": {"ca.crt": b64(&ca.pem().cert_pem), "ca.key": b64(&ca.pem().key_pem)}
    })
}

fn stub_settings(api: SocketAddr) -> SelfManaged {
    let kube = kube::Config::new(format!("http://{api}").parse().unwrap());
    settings(kube, NAMESPACE, CONFIGURATION, Duration::from_secs(365 * 86400))
}

/// A TLS handshake for the Service's name in `namespace`, trusting only `ca_pem`, then a health
/// check.
async fn verifies(addr: SocketAddr, ca_pem: &str, namespace: &str) -> bool {
    common::tls::verifies(addr, ca_pem, &format!("{SERVICE}.{namespace}.svc")).await
}

fn start(server: Server) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move { server.run(async { stopped.await.unwrap_or(()) }).await.unwrap() });
    (addr, stop)
}

#[test]
fn the_secret_race_is_lost_gracefully_and_the_bundle_applied_exactly() {
    runtime().block_on(async {
        let stub = Shared::default();
        let winner = Ca::generate(
            "the other replica's CA",
            time::OffsetDateTime::now_utc(),
            time::Duration::days(365),
        )
        .unwrap();
        stub.lock().unwrap().race_winner = Some(secret_with(&winner));
        let api = start_stub(stub.clone()).await;

        let server = Server::bind(options(stub_settings(api))).await.expect("bootstrap");
        let (addr, stop) = start(server);

        let seen = stub.lock().unwrap().seen.clone();
        let calls: Vec<(&str, &str)> = seen.iter().map(|s| (s.method, s.path.as_str())).collect();
        let secret_path = format!("/api/v1/namespaces/{NAMESPACE}/secrets/{SECRET}");
        let apply_path =
            format!("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{CONFIGURATION}");
        assert_eq!(
            calls,
            [
                ("GET", secret_path.as_str()),
                ("POST", format!("/api/v1/namespaces/{NAMESPACE}/secrets").as_str()),
                ("GET", secret_path.as_str()),
                ("PATCH", apply_path.as_str()),
            ],
            "read, create, lose the race (409), read the winner's, apply the bundle"
        );

        let apply = &seen[3];
        assert_eq!(apply.content_type, "application/apply-patch+yaml");
        let query: BTreeMap<&str, &str> =
            apply.query.split('&').filter_map(|kv| kv.split_once('=')).collect();
        assert_eq!(query.get("fieldManager"), Some(&FIELD_MANAGER));
        assert_eq!(query.get("force"), Some(&"true"));
        let bundle = base64::engine::general_purpose::STANDARD.encode(&winner.pem().cert_pem);
        assert_eq!(
            apply.body,
            json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": CONFIGURATION},
                "webhooks": [{
                    "name": WEBHOOK,
                    "clientConfig": {"caBundle": bundle},
                    "matchConditions": match_conditions(&Config::builtin()).conditions,
                }]
            }),
            "only the caBundle and the configuration's matchConditions are applied, nothing a GitOps tool would fight over"
        );

        assert!(
            verifies(addr, &winner.pem().cert_pem, NAMESPACE).await,
            "the serving certificate is signed by the winner's CA"
        );
        stop.send(()).unwrap();
    });
}

// ---- Against the real API server ----------------------------------------------------------------

/// Starts a control plane with the launcher at `$SIDECAR_INJECTOR_KUBE_CLUSTER` (default
/// `../shared/kube/cluster` beside the clone; it needs root, see docs/testing.md) and runs this same test again inside its network namespace, where `KUBE_CA` is
/// set and `KUBECONFIG` is an admin's: the tests below check what the API server stores, not RBAC
/// (`tests/e2e_cluster.py` runs the binary with the Deployment's own ServiceAccount).
#[test]
fn on_a_real_api_server() {
    if std::env::var_os("KUBE_CA").is_some() {
        // As `Server::bind` does: with both ring and aws-lc-rs linked, rustls has no default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        runtime().block_on(async {
            two_replicas_starting_together_share_one_ca().await;
            renewal_and_rotation_follow_the_clock().await;
        });
        return;
    }
    let script = std::env::var_os("SIDECAR_INJECTOR_KUBE_CLUSTER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kube/cluster"));
    assert!(
        script.exists(),
        "{} is missing: this test needs the control-plane launcher (`cluster run -- COMMAND`, which starts etcd, kube-apiserver and kube-controller-manager in a network namespace of their own and needs root); set SIDECAR_INJECTOR_KUBE_CLUSTER to its path (docs/testing.md)",
        script.display()
    );
    let status = std::process::Command::new(&script)
        .args(["run", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "on_a_real_api_server", "--nocapture", "--test-threads=1"])
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(status.success(), "the tests against the real API server failed (their output is above)");
}

/// A namespace and a MutatingWebhookConfiguration of one test's own on the real API server.
struct Cluster {
    client: kube::Client,
    namespace: String,
}

impl Cluster {
    /// The deploy's webhook configuration, named after the test (its namespaceSelector matches no
    /// namespace here, so nothing ever calls it).
    async fn new(name: &str) -> Cluster {
        let client = kube::Client::try_default().await.expect("the admin kubeconfig");
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await.unwrap();
        let text = include_str!("../deploy-incluster/70-mutatingwebhookconfiguration.yaml");
        let mut configuration: MutatingWebhookConfiguration = serde_saphyr::from_str(text).unwrap();
        configuration.metadata.name = Some(name.into());
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .create(&PostParams::default(), &configuration)
            .await
            .unwrap();
        Cluster { client, namespace: name.into() }
    }

    async fn settings(&self, ca_validity: Duration) -> SelfManaged {
        let kube = kube::Config::infer().await.unwrap();
        settings(kube, &self.namespace, &self.namespace, ca_validity)
    }

    async fn stored_ca(&self) -> String {
        let secret =
            Api::<Secret>::namespaced(self.client.clone(), &self.namespace).get(SECRET).await.unwrap();
        String::from_utf8(secret.data.unwrap()["ca.crt"].0.clone()).unwrap()
    }

    async fn previous_ca(&self) -> Option<String> {
        let secret =
            Api::<Secret>::namespaced(self.client.clone(), &self.namespace).get(SECRET).await.unwrap();
        Some(String::from_utf8(secret.data?.get("previous.crt")?.0.clone()).unwrap())
    }

    async fn configuration(&self) -> MutatingWebhookConfiguration {
        Api::<MutatingWebhookConfiguration>::all(self.client.clone()).get(&self.namespace).await.unwrap()
    }

    async fn bundle(&self) -> String {
        let configuration = self.configuration().await;
        let bundle = configuration.webhooks.unwrap()[0].client_config.ca_bundle.clone();
        String::from_utf8(bundle.expect("a caBundle").0).unwrap()
    }
}

async fn two_replicas_starting_together_share_one_ca() {
    let cluster = Cluster::new("two-replicas").await;
    let year = Duration::from_secs(365 * 86400);
    let (a, b) = tokio::join!(
        Server::bind(options(cluster.settings(year).await)),
        Server::bind(options(cluster.settings(year).await))
    );
    let ((addr_a, stop_a), (addr_b, stop_b)) = (start(a.unwrap()), start(b.unwrap()));
    let ca = cluster.stored_ca().await;
    assert!(
        verifies(addr_a, &ca, &cluster.namespace).await,
        "replica A serves a certificate of the stored CA"
    );
    assert!(verifies(addr_b, &ca, &cluster.namespace).await, "replica B serves a certificate of the same CA");
    assert_eq!(cluster.bundle().await, ca, "the caBundle is that CA");

    let managed = cluster.configuration().await.metadata.managed_fields.unwrap();
    let ours: Vec<_> = managed.iter().filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER)).collect();
    assert_eq!(ours.len(), 1, "one entry for our field manager: {managed:?}");
    assert_eq!(ours[0].operation.as_deref(), Some("Apply"), "written by server-side apply");
    let key = format!("k:{{\"name\":\"{WEBHOOK}\"}}");
    let conditions: serde_json::Map<String, Value> = match_conditions(&Config::builtin())
        .conditions
        .iter()
        .map(|c| {
            (format!("k:{{\"name\":\"{}\"}}", c.name), json!({".": {}, "f:expression": {}, "f:name": {}}))
        })
        .collect();
    assert_eq!(
        serde_json::to_value(&ours[0].fields_v1).unwrap(),
        json!({"f:webhooks": {key: {".": {}, "f:clientConfig": {"f:caBundle": {}}, "f:matchConditions": conditions, "f:name": {}}}}),
        "the field manager owns the caBundle and the matchConditions, nothing a GitOps tool would fight over"
    );
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    println!("real API server: two replicas starting together share one CA, applied by {FIELD_MANAGER}");
}

/// Renewal and rotation on a fake clock: the time is an argument, so years pass in a moment.
async fn renewal_and_rotation_follow_the_clock() {
    let cluster = Cluster::new("rotation").await;
    let day: time::Duration = time::Duration::DAY;
    let t0 = time::OffsetDateTime::now_utc();
    let mut settings = cluster.settings(Duration::from_secs(3650 * 86400)).await;
    settings.serving_validity = Duration::from_secs(30 * 86400);
    let (mut managed, serving) =
        Managed::bootstrap(settings, &Config::builtin(), t0).await.expect("bootstrap");
    let first = cluster.stored_ca().await;
    assert!(signed_by(&serving, &first, &cluster.namespace, t0));

    assert!(managed.tick(t0 + day).await.unwrap().is_none(), "nothing to do a day later");
    // A third of the serving certificate's 30 days left: renewed, by the same CA.
    let renewed = managed.tick(t0 + day * 21).await.unwrap().expect("renewed after 21 days");
    assert_ne!(renewed.serial, serving.serial);
    let t51: time::OffsetDateTime = t0 + day * 51;
    assert_eq!(renewed.not_after, t51.unix_timestamp());
    assert_eq!(cluster.stored_ca().await, first, "renewal keeps the CA");
    assert!(signed_by(&renewed, &first, &cluster.namespace, t0 + day * 21));

    // A third of the CA's ten years left: a new CA, with the old one kept in the bundle.
    let later = t0 + day * 2434;
    let rotated = managed.tick(later).await.unwrap().expect("a certificate from the new CA");
    let second = cluster.stored_ca().await;
    assert_ne!(first, second, "the Secret holds a new CA");
    let bundle = cluster.bundle().await;
    assert!(bundle.contains(&first) && bundle.contains(&second), "old and new CA are both trusted");
    assert_eq!(cluster.previous_ca().await, Some(first.clone()), "the old CA is kept in the Secret");
    assert!(signed_by(&rotated, &second, &cluster.namespace, later), "new certificates come from the new CA");
    assert!(!signed_by(&rotated, &first, &cluster.namespace, later));
    // Once the old CA has expired, a bundle leaves it out.
    assert_eq!(managed.bundle(t0 + day * 3651), second);
    println!("real API server: renewal and CA rotation on a fake clock");
}

/// `loaded` verifies for the Service's name in `namespace` at `now`, with `ca_pem` as the only root.
fn signed_by(loaded: &Loaded, ca_pem: &str, namespace: &str, now: time::OffsetDateTime) -> bool {
    use rustls::client::danger::ServerCertVerifier;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(std::sync::Arc::new(roots), provider)
            .build()
            .unwrap();
    let name = rustls::pki_types::ServerName::try_from(format!("{SERVICE}.{namespace}.svc")).unwrap();
    let at = rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(now.unix_timestamp() as u64));
    let chain = &loaded.key.cert;
    verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], at).is_ok()
}
