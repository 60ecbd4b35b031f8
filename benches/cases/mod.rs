//! The reviews `cargo bench --bench review` measures, shared with `benches/review_ir.rs`: a typical
//! Pod (about 3 KB, as a Deployment's ReplicaSet sends it) under three configurations, and a huge
//! one (3 containers with 1,500 env vars each), each with the profiles it must be injected with.
//!
//! `typical_parameterised` is the typical Pod with the built-in profile rewritten to use two
//! parameters (one from the Pod's annotation, checked by a pattern; one its default, a quantity), a
//! built-in, and a selector instead of `defaultProfiles`: the same additions as `typical`, so the
//! two medians' ratio is the cost of parameters and selection. `typical_example_config` is the same
//! Pod under the example configuration (deploy-incluster/examples/profiles.yaml): two
//! larger sidecars, both chosen by selectors, parameters, built-ins, copyEnv and shared mounts.

use serde_json::{Value, json};
use sidecar_injector::Config;

// The same AdmissionReview envelope as the tests.
#[path = "../../tests/common/mod.rs"]
mod common;

/// One measured review: the body, its configuration, and the profiles it must get.
pub struct Case {
    pub name: &'static str,
    pub body: Vec<u8>,
    pub config: Config,
    pub profiles: &'static [&'static str],
}

/// Every case, each checked to be the injection it claims to be, so that nothing measures a skip.
pub fn cases() -> Vec<Case> {
    let builtin = Config::builtin;
    let cases = vec![
        Case { name: "typical", body: typical(), config: builtin(), profiles: &["example"] },
        Case {
            name: "typical_parameterised",
            body: typical_parameterised(),
            config: Config::from_yaml(PARAMETERISED).unwrap(),
            profiles: &["example"],
        },
        Case {
            name: "typical_example_config",
            body: typical_example_config(),
            config: Config::from_yaml(include_str!("../../deploy-incluster/examples/profiles.yaml")).unwrap(),
            profiles: &["log-shipper", "metrics-agent"],
        },
        Case { name: "huge_3x1500_env", body: huge(1500), config: builtin(), profiles: &["example"] },
    ];
    for case in &cases {
        let reviewed = sidecar_injector::review(&case.body, &case.config).expect("the bench review is valid");
        assert_eq!(reviewed.summary.decision.as_str(), "injected", "the bench must measure a real injection");
        let profiles: Vec<&str> = reviewed.chosen.iter().map(|c| c.profile.as_str()).collect();
        assert_eq!(profiles, case.profiles, "{}: the profiles, chosen as the case says", case.name);
    }
    cases
}

fn container(name: &str, env_vars: usize) -> Value {
    let env: Vec<Value> = (0..env_vars)
        .map(|i| json!({"name": format!("{}_VAR_{i}", name.to_uppercase()), "value": format!("value-{i}")}))
        .collect();
    json!({
        "name": name,
        "image": format!("registry.example.com/shop/{name}:2.14.1"),
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": env,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/shop", "readOnly": true},
            {"name": "kube-api-access-8x2kq", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
        ],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}
    })
}

fn pod_review(containers: Vec<Value>) -> Vec<u8> {
    let pod = json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "generateName": "checkout-7d9f8b6c5d-",
            "namespace": "shop",
            "labels": {"app.kubernetes.io/name": "checkout", "app.kubernetes.io/part-of": "shop", "pod-template-hash": "7d9f8b6c5d"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z", "prometheus.io/scrape": "true"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-7d9f8b6c5d", "uid": "6c1f3a52-5d7e-4b0a-9d1e-2f1a3b4c5d6e", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": "checkout-config", "defaultMode": 420}},
                {"name": "kube-api-access-8x2kq", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}, {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}], "defaultMode": 420}}
            ],
            "containers": containers,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "checkout",
            "serviceAccount": "checkout",
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerThanOrEqual"
        }
    });
    serde_json::to_vec(&common::pod_review(&pod, "shop")).unwrap()
}

fn typical() -> Vec<u8> {
    pod_review(vec![container("checkout", 8)])
}

/// The typical Pod, annotated for `PARAMETERISED`.
fn typical_parameterised() -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&typical()).unwrap();
    review["request"]["object"]["metadata"]["annotations"]["example.com/period"] = json!("2");
    serde_json::to_vec(&review).unwrap()
}

/// The typical Pod, labelled and annotated for both profiles of the example configuration.
fn typical_example_config() -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&typical()).unwrap();
    let metadata = &mut review["request"]["object"]["metadata"];
    metadata["labels"]["tier"] = json!("web");
    metadata["labels"]["logs.example.com/ship"] = json!("true");
    metadata["annotations"]["logs.example.com/path"] = json!("/var/log/checkout");
    let app = &mut review["request"]["object"]["spec"]["containers"][0];
    app["env"].as_array_mut().unwrap().push(json!({"name": "OTEL_SERVICE_NAME", "value": "checkout"}));
    serde_json::to_vec(&review).unwrap()
}

/// The built-in configuration's profile, with parameters and a selector.
const PARAMETERISED: &str = r#"
labels: {foo: bar}
profiles:
  example:
    selector: {matchLabels: {app.kubernetes.io/part-of: shop}}
    parameters:
      period: {default: "1", annotation: example.com/period, pattern: '[1-9][0-9]*'}
      memory: {default: 16Mi}
    containers:
      - name: example-sidecar
        image: busybox:1.37
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep %{period}; done"]
        env: [{name: POD_NAMESPACE, value: "%{pod.namespace}"}]
        resources:
          requests: {cpu: 5m, memory: 8Mi}
          limits: {memory: "%{memory}"}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          runAsNonRoot: true
          runAsUser: 65534
          capabilities: {drop: [ALL]}
"#;

pub fn huge(env_per_container: usize) -> Vec<u8> {
    pod_review(["checkout", "worker", "cache"].iter().map(|n| container(n, env_per_container)).collect())
}
