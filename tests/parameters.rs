//! Profiles that fit each workload: declared parameters set by a Pod's annotations or labels,
//! built-in values, env copied from the app and its mounts shared. Each row is a case of its own;
//! each reads the answer as the API server does (the patch applied to the Pod).

mod common;

use common::{admit, answer, config, pod_review, rows};
use serde_json::{Value, json};
use sidecar_injector::Config;

/// A log shipper whose path, level and memory a Pod may set; `on_error` as given.
fn shipper(on_error: &str) -> Config {
    config(&format!(
        r#"
defaultProfiles: [shipper]
profiles:
  shipper:
    onError: {on_error}
    parameters:
      logPath: {{default: /var/log/app, annotation: logs.example.com/path, pattern: '/var/log/[^ ]+'}}
      level: {{default: info, annotation: logs.example.com/level, label: logs.example.com/level, enum: [debug, info, warn]}}
      memory: {{default: 32Mi, annotation: logs.example.com/memory}}
    sidecars:
      - name: shipper
        image: shipper:1
        args: ["--path=%{{logPath}}", "--level=%{{level}}", "--ns=%{{pod.namespace}}", "--as=%{{pod.serviceAccountName}}", "--app=%{{pod.appContainer}}", "100%%{{x}}"]
        resources: {{limits: {{memory: "%{{memory}}"}}}}
"#
    ))
}

/// A Pod with these annotations and labels, its one container named `web`.
fn pod(annotations: Value, labels: Value) -> Value {
    json!({
        "metadata": {"name": "p", "annotations": annotations, "labels": labels},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}
    })
}

/// The injected shipper's args, after the patch is applied.
fn args_of(patched: &Value) -> Vec<String> {
    let shipper = &patched["spec"]["initContainers"][0];
    assert_eq!(shipper["name"], "shipper");
    shipper["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect()
}

/// One row: the shipper is injected with `args`, in namespace `shop`.
fn injected_with(annotations: Value, labels: Value, args: &[&str]) {
    let (response, patched) = admit(&pod(annotations, labels), "shop", &shipper("deny"));
    assert!(response.response.allowed, "{:?}", response.response.status);
    assert_eq!(args_of(&patched), args);
}

const DEFAULTS: [&str; 6] =
    ["--path=/var/log/app", "--level=info", "--ns=shop", "--as=default", "--app=web", "100%{x}"];

rows! { injected_with;
    every_parameter_its_default: (json!({}), json!({}), &DEFAULTS),
    a_parameter_from_an_annotation: (
        json!({"logs.example.com/path": "/var/log/web/access.log"}), json!({}),
        &["--path=/var/log/web/access.log", "--level=info", "--ns=shop", "--as=default", "--app=web", "100%{x}"],
    ),
    a_parameter_from_a_label: (
        json!({}), json!({"logs.example.com/level": "debug"}),
        &["--path=/var/log/app", "--level=debug", "--ns=shop", "--as=default", "--app=web", "100%{x}"],
    ),
    the_annotation_wins_over_the_label: (
        json!({"logs.example.com/level": "warn"}), json!({"logs.example.com/level": "debug"}),
        &["--path=/var/log/app", "--level=warn", "--ns=shop", "--as=default", "--app=web", "100%{x}"],
    ),
    a_value_containing_placeholder_text_is_not_expanded: (
        json!({"logs.example.com/path": "/var/log/%{level}"}), json!({}),
        &["--path=/var/log/%{level}", "--level=info", "--ns=shop", "--as=default", "--app=web", "100%{x}"],
    ),
    a_dollar_in_a_value_stays_literal_where_kubernetes_expands: (
        json!({"logs.example.com/path": "/var/log/$(HOME)"}), json!({}),
        &["--path=/var/log/$$(HOME)", "--level=info", "--ns=shop", "--as=default", "--app=web", "100%{x}"],
    ),
}

#[test]
fn an_escaped_placeholder_is_a_literal_and_the_service_account_is_the_pods() {
    let mut pod = pod(json!({}), json!({}));
    pod["spec"]["serviceAccountName"] = json!("reader");
    let (_, patched) = admit(&pod, "shop", &shipper("deny"));
    let args = args_of(&patched);
    assert_eq!(args[3], "--as=reader");
    assert_eq!(args[5], "100%{x}", "%%{{ is written as %{{");
}

#[test]
fn a_substituted_quantity_lands_in_resources() {
    let (_, patched) =
        admit(&pod(json!({"logs.example.com/memory": "64Mi"}), json!({})), "shop", &shipper("deny"));
    assert_eq!(patched["spec"]["initContainers"][0]["resources"]["limits"]["memory"], "64Mi");
}

/// One row: the Pod's value is refused (with `deny`) or the Pod admitted unchanged with a warning
/// (with `allow`); either way no patch, and the message says `what`.
fn refused_value(annotations: Value, labels: Value, on_error: &str, what: &[&str]) {
    let response = answer(&pod_review(&pod(annotations, labels), "shop"), &shipper(on_error));
    assert!(response.response.patch.is_none(), "never a patch");
    let said = match (&response.response.status, on_error) {
        (Some(status), "deny") => {
            assert!(!response.response.allowed);
            status.message.to_string()
        }
        (None, "allow") => {
            assert!(response.response.allowed);
            response.response.warnings.join("; ")
        }
        (status, _) => panic!("{on_error} gave {status:?}"),
    };
    for part in what {
        assert!(said.contains(part), "{said:?} should say {part:?}");
    }
}

rows! { refused_value;
    a_value_failing_its_pattern_is_denied: (
        json!({"logs.example.com/path": "/etc/shadow"}), json!({}), "deny",
        &["annotation logs.example.com/path = \"/etc/shadow\" does not match the pattern \"/var/log/[^ ]+\" (parameter logPath)"],
    ),
    a_value_failing_its_pattern_is_allowed_unchanged: (
        json!({"logs.example.com/path": "/etc/shadow"}), json!({}), "allow",
        &["does not match the pattern", "the Pod is admitted unchanged"],
    ),
    a_value_outside_its_enum_is_denied: (
        json!({}), json!({"logs.example.com/level": "loud"}), "deny",
        &["label logs.example.com/level = \"loud\" is not one of debug, info, warn (parameter level)"],
    ),
    a_substituted_quantity_that_does_not_parse_is_denied: (
        json!({"logs.example.com/memory": "lots"}), json!({}), "deny",
        &["container \"shipper\".resources.limits.memory: \"lots\" is not a quantity", "(memory from annotation logs.example.com/memory)"],
    ),
    a_substituted_quantity_that_does_not_parse_is_allowed_unchanged: (
        json!({"logs.example.com/memory": "lots"}), json!({}), "allow",
        &["is not a quantity", "the Pod is admitted unchanged"],
    ),
}

#[test]
fn a_required_parameter_that_is_missing_is_denied_naming_where_to_set_it() {
    let config = config(
        "defaultProfiles: [otel]\nprofiles: {otel: {parameters: {service: {required: true, label: app.kubernetes.io/name}}, sidecars: [{name: otel, image: otel:1, env: [{name: OTEL_SERVICE_NAME, value: '%{service}'}]}]}}\n",
    );
    let response = answer(&pod_review(&pod(json!({}), json!({})), "shop"), &config);
    assert!(!response.response.allowed);
    let message = response.response.status.unwrap().message.to_string();
    assert!(message.contains("parameter service is required: set label app.kubernetes.io/name"), "{message}");
    let (_, patched) = admit(&pod(json!({}), json!({"app.kubernetes.io/name": "cart"})), "shop", &config);
    assert_eq!(
        patched["spec"]["initContainers"][0]["env"][0],
        json!({"name": "OTEL_SERVICE_NAME", "value": "cart"})
    );
}

#[test]
fn re_reviewing_an_injected_pod_gives_no_patch() {
    let config = shipper("deny");
    let (_, patched) =
        admit(&pod(json!({"logs.example.com/path": "/var/log/x"}), json!({})), "shop", &config);
    let (again, unchanged) = admit(&patched, "shop", &config);
    assert!(again.response.patch.is_none());
    assert_eq!(again.response.audit_annotations["reason"], "already-injected");
    assert_eq!(unchanged, patched);
}

fn status_of(annotations: Value) -> String {
    let (_, patched) = admit(&pod(annotations, json!({})), "shop", &shipper("deny"));
    patched["metadata"]["annotations"]["sidecar-injector.io/status"].as_str().unwrap().to_owned()
}

#[test]
fn the_same_pod_with_another_value_gets_another_status_hash() {
    let a = status_of(json!({"logs.example.com/path": "/var/log/a"}));
    assert_eq!(a, status_of(json!({"logs.example.com/path": "/var/log/a"})), "same values, same status");
    assert_ne!(a, status_of(json!({"logs.example.com/path": "/var/log/b"})));
    // A Pod injected with one value and re-created with another is told apart, not re-injected.
    let (_, patched) =
        admit(&pod(json!({"logs.example.com/path": "/var/log/a"}), json!({})), "shop", &shipper("deny"));
    let mut recreated = patched.clone();
    recreated["metadata"]["annotations"]["logs.example.com/path"] = json!("/var/log/b");
    let (response, _) = admit(&recreated, "shop", &shipper("deny"));
    assert_eq!(response.response.audit_annotations["reason"], "injected-by-other-config");
}

/// An app container with env and mounts, as the API server sends it (the token mount included).
fn app_pod() -> Value {
    json!({
        "metadata": {"name": "p"},
        "spec": {
            "serviceAccountName": "cart",
            "containers": [
                {"name": "web", "image": "nginx", "env": [
                    {"name": "OTEL_SERVICE_NAME", "value": "cart"},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "SECRET", "value": "not copied"}
                ], "volumeMounts": [
                    {"name": "logs", "mountPath": "/var/log/cart"},
                    {"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
                ]},
                {"name": "worker", "image": "w", "volumeMounts": [
                    {"name": "cache", "mountPath": "/cache", "readOnly": false},
                    {"name": "logs", "mountPath": "/var/log/cart"}
                ]}
            ],
            "volumes": [{"name": "logs", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}, {"name": "kube-api-access-x", "projected": {"sources": []}}]
        }
    })
}

#[test]
fn copy_env_copies_the_named_vars_first_into_the_profiles_containers() {
    let config = config(
        "defaultProfiles: [otel]\nprofiles: {otel: {copyEnv: {names: [OTEL_SERVICE_NAME, NODE, MISSING]}, sidecars: [{name: otel, image: otel:1, env: [{name: ENDPOINT, value: 'http://$(NODE):4317'}]}]}}\n",
    );
    let (response, patched) = admit(&app_pod(), "shop", &config);
    assert_eq!(
        patched["spec"]["initContainers"][0]["env"],
        json!([
            {"name": "OTEL_SERVICE_NAME", "value": "cart"},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "ENDPOINT", "value": "http://$(NODE):4317"}
        ])
    );
    let warnings = response.response.warnings.join("; ");
    assert!(
        warnings.contains("copies env var MISSING from container \"web\", which does not set it"),
        "{warnings}"
    );
}

#[test]
fn copy_env_from_a_container_the_pod_does_not_have_is_denied() {
    let config = config(
        "defaultProfiles: [otel]\nprofiles: {otel: {copyEnv: {names: [A], from: api}, sidecars: [{name: otel, image: otel:1}]}}\n",
    );
    let response = answer(&pod_review(&app_pod(), "shop"), &config);
    assert!(!response.response.allowed);
    let message = response.response.status.unwrap().message.to_string();
    assert!(message.contains("copies env from container \"api\", which the Pod does not have"), "{message}");
}

/// One row: with `shareVolumeMounts` as given, the sidecar's mounts are `expected`.
fn shared(share: &str, expected: Value) {
    let config = config(&format!(
        "defaultProfiles: [s]\nprofiles: {{s: {{shareVolumeMounts: {share}, sidecars: [{{name: s, image: s:1, volumeMounts: [{{name: cache, mountPath: /cache}}]}}], containers: [{{name: other, image: o:1}}]}}}}\n"
    ));
    let (response, patched) = admit(&app_pod(), "shop", &config);
    assert!(response.response.allowed, "{:?}", response.response.status);
    assert_eq!(patched["spec"]["initContainers"][0]["volumeMounts"], expected);
}

rows! { shared;
    share_volume_mounts_read_only_without_the_token_and_keeping_the_own_path: (
        "{}",
        json!([
            {"name": "cache", "mountPath": "/cache"},
            {"name": "logs", "mountPath": "/var/log/cart", "readOnly": true}
        ]),
    ),
    share_volume_mounts_writable_when_the_profile_says: (
        "{readOnly: false, containers: [s]}",
        json!([
            {"name": "cache", "mountPath": "/cache"},
            {"name": "logs", "mountPath": "/var/log/cart"}
        ]),
    ),
}

#[test]
fn share_volume_mounts_only_into_the_containers_named() {
    let config = config(
        "defaultProfiles: [s]\nprofiles: {s: {shareVolumeMounts: {containers: [other]}, sidecars: [{name: s, image: s:1}], containers: [{name: other, image: o:1}]}}\n",
    );
    let (_, patched) = admit(&app_pod(), "shop", &config);
    assert_eq!(patched["spec"]["initContainers"][0].get("volumeMounts"), None);
    let mounts = &patched["spec"]["containers"][2]["volumeMounts"];
    assert_eq!(mounts.as_array().unwrap().len(), 2, "{mounts}: logs and cache, not the token");
}

#[test]
fn parameters_in_labels_annotations_volumes_and_app_env() {
    let config = config(
        r#"
defaultProfiles: [p]
profiles:
  p:
    parameters:
      tier: {default: web, label: tier, pattern: '[a-z]+'}
      cm: {default: logging, annotation: example.com/config}
    labels: {example.com/tier: "%{tier}"}
    annotations: {example.com/namespace: "%{pod.namespace}"}
    volumes: [{name: conf, configMap: {name: "%{cm}-%{pod.namespace}"}}]
    appContainers: {env: [{name: TIER, value: "%{tier}"}]}
    sidecars: [{name: s, image: s:1, volumeMounts: [{name: conf, mountPath: /conf}]}]
"#,
    );
    let (_, patched) =
        admit(&pod(json!({"example.com/config": "fluent"}), json!({"tier": "api"})), "shop", &config);
    assert_eq!(patched["metadata"]["labels"]["example.com/tier"], "api");
    assert_eq!(patched["metadata"]["annotations"]["example.com/namespace"], "shop");
    assert_eq!(patched["spec"]["volumes"][0]["configMap"]["name"], "fluent-shop");
    assert_eq!(patched["spec"]["containers"][0]["env"][0], json!({"name": "TIER", "value": "api"}));
    // A value that makes a name the API server refuses is caught here, naming the field.
    let response =
        answer(&pod_review(&pod(json!({"example.com/config": "Bad_Name"}), json!({})), "shop"), &config);
    let message = response.response.status.unwrap().message.to_string();
    assert!(message.contains("volume \"conf\".configMap.name: name \"Bad_Name-shop\""), "{message}");
}

/// The realistic example configuration (deploy-incluster/examples/profiles.yaml), as a user would try it.
fn example() -> Config {
    let text = std::fs::read_to_string("deploy-incluster/examples/profiles.yaml").unwrap();
    Config::from_yaml(&text).unwrap_or_else(|e| panic!("the example configuration is refused: {e}"))
}

fn checkout(path: &str) -> Value {
    json!({
        "metadata": {
            "generateName": "checkout-7d9f8b6c5d-",
            "labels": {"app": "checkout", "tier": "web", "logs.example.com/ship": "true"},
            "annotations": {"logs.example.com/path": path}
        },
        "spec": {
            "serviceAccountName": "checkout",
            "containers": [{
                "name": "checkout", "image": "shop/checkout:2",
                "env": [{"name": "OTEL_SERVICE_NAME", "value": "checkout"}],
                "volumeMounts": [{"name": "logs", "mountPath": "/var/log/checkout"}]
            }],
            "volumes": [{"name": "logs", "emptyDir": {}}]
        }
    })
}

#[test]
fn the_example_configuration_ships_logs_and_metrics_with_each_pods_values() {
    let (response, patched) = admit(&checkout("/var/log/checkout"), "shop", &example());
    assert_eq!(response.response.audit_annotations["profiles"], "log-shipper,metrics-agent");
    let init = &patched["spec"]["initContainers"];
    let (shipper, collector) = (&init[0], &init[1]);
    assert_eq!(shipper["args"][3], "path=/var/log/checkout/*.log");
    assert_eq!(shipper["args"][5], "parser=json");
    assert_eq!(
        shipper["env"],
        json!([{"name": "K8S_NAMESPACE", "value": "shop"}, {"name": "K8S_CONTAINER", "value": "checkout"}])
    );
    assert_eq!(
        shipper["volumeMounts"],
        json!([{"name": "logs", "mountPath": "/var/log/checkout", "readOnly": true}])
    );
    assert_eq!(shipper["resources"]["limits"]["memory"], "64Mi");
    assert_eq!(patched["metadata"]["labels"]["logs.example.com/format"], "json");
    assert_eq!(collector["env"][0], json!({"name": "OTEL_SERVICE_NAME", "value": "checkout"}));
    assert_eq!(
        collector["env"][1]["value"],
        "k8s.namespace.name=shop,k8s.container.name=checkout,k8s.serviceaccount.name=checkout"
    );
    assert_eq!(patched["spec"]["containers"][0]["env"][1]["name"], "OTEL_EXPORTER_OTLP_ENDPOINT");
}

#[test]
fn the_example_configuration_refuses_a_log_path_outside_var_log() {
    let response = answer(&pod_review(&checkout("/etc"), "shop"), &example());
    assert!(!response.response.allowed);
    let message = response.response.status.unwrap().message.to_string();
    assert!(
        message.contains("annotation logs.example.com/path = \"/etc\" does not match the pattern"),
        "{message}"
    );
}
