//! The pure function, seen from the API server's side: review bytes in, response bytes out.

mod common;

use common::*;
use serde_json::{Value, json};
use sidecar_injector::engine::config::BUILTIN_YAML;
use sidecar_injector::engine::wire::{Operation, ReviewResponse};
use sidecar_injector::{Config, Decision, ReviewError, review};

fn status_of(pod: &Value) -> Value {
    let raw =
        pod["metadata"]["annotations"]["sidecar-injector.io/status"].as_str().expect("status annotation");
    serde_json::from_str(raw).expect("the status annotation is JSON")
}

/// The hash the built-in configuration's status annotation carries, taken from another Pod's
/// review with a configuration loaded anew: every Pod injected with one configuration carries the
/// same hash (the tests below check that it changes when the configuration does).
fn builtin_hash() -> String {
    let (_, patched) = admit(&small_pod(), "shop", &Config::from_yaml(BUILTIN_YAML).unwrap());
    status_of(&patched)["hash"].as_str().unwrap().to_owned()
}

/// The builtin injection done by hand: what a user expects the webhook to do to `original`.
fn expected_builtin(original: &Value) -> Value {
    let mut expected = original.clone();
    let metadata = expected.as_object_mut().unwrap().entry("metadata").or_insert(json!({}));
    if metadata.is_null() {
        *metadata = json!({});
    }
    for field in ["labels", "annotations"] {
        if metadata.get(field).is_none_or(Value::is_null) {
            metadata[field] = json!({});
        }
    }
    metadata["labels"].as_object_mut().unwrap().entry("foo").or_insert(json!("bar"));
    let status = json!({"hash": builtin_hash(), "profiles": ["example"]});
    metadata["annotations"]["sidecar-injector.io/status"] = json!(status.to_string());
    let containers = expected["spec"].as_object_mut().unwrap().entry("containers").or_insert(json!([]));
    containers.as_array_mut().unwrap().push(example_sidecar());
    expected
}

/// One row of the Pod table: the Pod gets exactly the builtin additions and nothing else, and a
/// second review of the result gives no patch. The table is data (tests/fixtures/pods.json), so
/// that the Lambda's emulator test (tests/lambda_emulator.py) sends the same Pods.
fn pod_row(name: &str) {
    let table: serde_json::Map<String, Value> =
        serde_json::from_str(include_str!("fixtures/pods.json")).unwrap();
    let pod = &table[name];
    let config = Config::builtin();
    let (response, patched) = admit(pod, "shop", &config);
    assert!(response.response.allowed);
    assert_eq!(response.response.uid, "3b5c1f2e-6a55-4d4f-a1b2-000000000001");
    assert_eq!(patched, expected_builtin(pod), "the Pod must gain exactly the label, status and sidecar");

    let (again, unchanged) = admit(&patched, "shop", &config);
    assert_eq!(patch_of(&again).map(|p| p.0.len()), None, "re-review must give no patch");
    assert_eq!(again.response.audit_annotations["reason"], "already-injected");
    assert_eq!(unchanged, patched);
}

/// Each row of tests/fixtures/pods.json, a test case of its own.
macro_rules! pod_table {
    ($($test:ident: $name:literal,)*) => {
        rows! { pod_row; $($test: ($name),)* }
        const POD_TABLE: &[&str] = &[$($name),*];
    };
}

pod_table! {
    pod_table_typical: "a typical Pod",
    pod_table_no_labels_map: "no labels map",
    pod_table_no_labels_map_and_a_slash_in_an_annotation_key: "no labels map, an annotation key with /",
    pod_table_no_metadata: "no metadata at all",
    pod_table_labels_null: "labels: null, as YAML writes `labels:`",
    pod_table_empty_labels_and_annotations: "empty labels and annotations maps",
    pod_table_keys_with_slash_and_tilde: "label and annotation keys with / and ~",
    pod_table_no_volumes_no_init_containers: "no volumes, no init containers",
    pod_table_existing_sidecars_and_init_containers: "existing native sidecars and init containers",
    pod_table_own_foo_label_kept: "the Pod already has foo=baz: its value is kept",
    pod_table_fields_k8s_openapi_does_not_model: "fields k8s-openapi does not model",
}

#[test]
fn every_row_of_the_pod_table_is_a_test_case() {
    let table: serde_json::Map<String, Value> =
        serde_json::from_str(include_str!("fixtures/pods.json")).unwrap();
    let mut listed = POD_TABLE.to_vec();
    listed.sort_unstable();
    assert_eq!(table.keys().map(String::as_str).collect::<Vec<_>>(), listed);
}

/// The status hash is stable for the same configuration and changes with any template, label or
/// annotation the configuration adds: it is what tells a current Pod from a stale one.
#[test]
fn the_status_hash_follows_the_configuration() {
    let hash = |yaml: &str| -> String {
        let (_, patched) = admit(&small_pod(), "shop", &config(yaml));
        status_of(&patched)["hash"].as_str().unwrap().to_owned()
    };
    let base =
        "labels: {foo: bar}\nprofiles: {p: {containers: [{name: s, image: 'i:1'}]}}\ndefaultProfiles: [p]\n";
    let first = hash(base);
    assert!(first.len() == 16 && first.bytes().all(|b| b.is_ascii_hexdigit()), "{first}");
    assert_eq!(hash(base), first, "the same configuration, loaded again");
    assert_eq!(hash(&format!("# a comment\n{base}")), first, "comments are not content");
    for changed in [
        base.replace("'i:1'", "'i:2'"),
        base.replace("foo: bar", "foo: baz"),
        base.replace(
            "containers: [{name: s, image: 'i:1'}]",
            "containers: [{name: s, image: 'i:1'}], annotations: {a: b}",
        ),
    ] {
        assert_ne!(hash(&changed), first, "{changed}");
    }
}

#[test]
fn patch_paths_escape_slash_and_tilde() {
    // `~` is not allowed in label or annotation keys, so only `/` can reach a patch path from a
    // configuration; the `~` rule is tested where pointers are built (engine::patch).
    let config = config("labels: {example.com/team: a}\nannotations: {a.io/b: c}\n");
    let pod = json!({"metadata": {"labels": {"app": "x"}, "annotations": {"k": "v"}}, "spec": {"containers": [{"name": "app", "image": "x"}]}});
    let response = answer(&pod_review(&pod, "shop"), &config);
    let paths: Vec<String> = patch_of(&response)
        .unwrap()
        .0
        .iter()
        .map(|op| match op {
            json_patch::PatchOperation::Add(add) => add.path.to_string(),
            other => panic!("only add operations are expected, got {other:?}"),
        })
        .collect();
    assert_eq!(
        paths,
        [
            "/metadata/labels/example.com~1team",
            "/metadata/annotations/a.io~1b",
            "/metadata/annotations/sidecar-injector.io~1status"
        ]
    );
}

#[test]
fn injected_items_go_where_kubernetes_runs_them() {
    let config = config(
        r#"
defaultProfiles: [mesh]
profiles:
  mesh:
    initContainers: [{name: mesh-init, image: init}]
    sidecars: [{name: mesh-proxy, image: proxy}]
    containers: [{name: mesh-agent, image: agent}]
    volumes: [{name: mesh-certs, emptyDir: {}}]
    appContainers:
      env: [{name: MESH, value: "on"}, {name: KEEP, value: ours}]
      volumeMounts: [{name: mesh-certs, mountPath: /certs}]
"#,
    );
    let pod = json!({"metadata": {}, "spec": {
        "initContainers": [{"name": "migrate", "image": "tool"}],
        "containers": [
            {"name": "app", "image": "x", "env": [{"name": "KEEP", "value": "theirs"}]},
            {"name": "worker", "image": "y"}
        ],
        "volumes": [{"name": "data", "emptyDir": {}}]
    }});
    let (response, patched) = admit(&pod, "shop", &config);
    let names = |list: &Value| {
        list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let spec = &patched["spec"];
    assert_eq!(names(&spec["initContainers"]), ["mesh-init", "mesh-proxy", "migrate"]);
    assert_eq!(spec["initContainers"][1]["restartPolicy"], "Always", "a sidecar is a native sidecar");
    assert_eq!(spec["initContainers"][0].get("restartPolicy"), None);
    assert_eq!(names(&spec["containers"]), ["app", "worker", "mesh-agent"]);
    assert_eq!(names(&spec["volumes"]), ["data", "mesh-certs"]);
    assert_eq!(
        spec["containers"][0]["env"],
        json!([{"name": "KEEP", "value": "theirs"}, {"name": "MESH", "value": "on"}])
    );
    assert_eq!(
        spec["containers"][1]["env"],
        json!([{"name": "MESH", "value": "on"}, {"name": "KEEP", "value": "ours"}])
    );
    assert_eq!(spec["containers"][1]["volumeMounts"], json!([{"name": "mesh-certs", "mountPath": "/certs"}]));
    assert_eq!(spec["containers"][2].get("env"), None, "injected containers do not get app env");
    let warnings = &response.response.warnings;
    assert!(warnings.iter().any(|w| w.contains("\"app\" already sets KEEP")), "{warnings:?}");
}

fn skipped_reason(pod: &Value, namespace: &str, config: &Config) -> String {
    let (response, patched) = admit(pod, namespace, config);
    assert!(response.response.allowed);
    assert!(response.response.patch.is_none(), "a skipped Pod gets no patch");
    assert_eq!(&patched, pod);
    assert_eq!(response.response.audit_annotations["decision"], "skipped");
    response.response.audit_annotations["reason"].to_string()
}

/// A Pod with `metadata` and one container, `spec` fields added from `spec`.
fn pod_with(metadata: Value, spec: Value) -> Value {
    let mut pod = json!({"metadata": metadata, "spec": {"containers": [{"name": "a", "image": "x"}]}});
    for (key, value) in spec.as_object().unwrap() {
        pod["spec"][key] = value.clone();
    }
    pod
}

/// One row: the Pod is admitted unchanged for `reason`.
fn skipped_for(pod: Value, namespace: &str, config: Config, reason: &str) {
    assert_eq!(skipped_reason(&pod, namespace, &config), reason);
}

rows! { skipped_for;
    opted_out_by_annotation: (
        pod_with(json!({"annotations": {"sidecar-injector.io/inject": "false"}}), json!({})),
        "shop", Config::builtin(), "opted-out",
    ),
    opted_out_by_label: (
        pod_with(json!({"labels": {"sidecar-injector.io/inject": "false"}}), json!({})),
        "shop", Config::builtin(), "opted-out",
    ),
    a_label_opt_out_wins_over_an_annotation_asking: (
        pod_with(
            json!({"labels": {"sidecar-injector.io/inject": "false"}, "annotations": {"sidecar-injector.io/inject": "true"}}),
            json!({}),
        ),
        "shop", Config::builtin(), "opted-out",
    ),
    a_skipped_namespace: (small_pod(), "kube-system", Config::builtin(), "namespace-skipped"),
    host_network: (pod_with(json!({}), json!({"hostNetwork": true})), "shop", Config::builtin(), "host-network"),
    not_requested_when_injection_is_off_by_default: (small_pod(), "shop", config_with("injectByDefault: false"), "not-requested"),
}

#[test]
fn asking_gets_the_default_profiles_when_injection_is_off_by_default() {
    let asked = pod_with(json!({"annotations": {"sidecar-injector.io/inject": "true"}}), json!({}));
    let (response, _) = admit(&asked, "shop", &config_with("injectByDefault: false"));
    assert_eq!(response.response.audit_annotations["profiles"], "example");
}

/// The builtin configuration with one top-level line changed.
fn config_with(line: &str) -> Config {
    let key = line.split(':').next().unwrap();
    let text: String = include_str!("../src/engine/default-config.yaml")
        .lines()
        .map(|l| if l.starts_with(&format!("{key}:")) { line.to_owned() } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n");
    config(&text)
}

#[test]
fn profiles_named_by_annotation() {
    let config = config(
        r#"
injectByDefault: false
profiles:
  logs: {containers: [{name: log-shipper, image: fluent-bit}], labels: {logs: "on"}}
  metrics: {containers: [{name: metrics-agent, image: agent}]}
"#,
    );
    let pod = json!({"metadata": {"annotations": {"sidecar-injector.io/inject": "metrics, logs"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}});
    let (response, patched) = admit(&pod, "shop", &config);
    assert_eq!(response.response.audit_annotations["profiles"], "metrics,logs");
    let names: Vec<&str> = patched["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "metrics-agent", "log-shipper"]);
    assert_eq!(patched["metadata"]["labels"]["logs"], "on");
    assert_eq!(status_of(&patched)["profiles"], json!(["metrics", "logs"]));
}

#[test]
fn on_error_deny_and_allow() {
    let clash =
        json!({"metadata": {}, "spec": {"containers": [{"name": "example-sidecar", "image": "mine"}]}});
    let response = answer(&pod_review(&clash, "shop"), &Config::builtin());
    assert!(!response.response.allowed);
    assert_eq!(response.response.status.as_ref().unwrap().code, 403);
    let message = response.response.status.as_ref().unwrap().message.as_ref();
    assert!(message.contains("container \"example-sidecar\", which the Pod already has"), "{message}");
    assert!(response.response.patch.is_none());

    let lenient = config(
        "profiles: {example: {containers: [{name: example-sidecar, image: busybox}], onError: allow}}\ndefaultProfiles: [example]\n",
    );
    let (response, patched) = admit(&clash, "shop", &lenient);
    assert!(response.response.allowed);
    assert_eq!(patched, clash, "onError: allow admits the Pod unchanged");
    assert_eq!(response.response.audit_annotations["reason"], "error-allowed");
    let warning = &response.response.warnings[0];
    assert!(warning.contains("already has") && warning.contains("admitted unchanged"), "{warning}");

    let unknown = json!({"metadata": {"annotations": {"sidecar-injector.io/inject": "nope"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}});
    let response = answer(&pod_review(&unknown, "shop"), &Config::builtin());
    assert!(!response.response.allowed);
    assert!(
        response.response.status.as_ref().unwrap().message.as_ref().contains("no profile named \"nope\"")
    );
    let response = answer(&pod_review(&unknown, "shop"), &config_with("onError: allow"));
    assert!(response.response.allowed);
    assert!(response.response.patch.is_none());
}

#[test]
fn a_pod_injected_by_another_configuration_is_left_alone() {
    let (_, injected) = admit(&small_pod(), "shop", &Config::builtin());
    let other = config(
        "labels: {foo: baz}\ndefaultProfiles: [example]\nprofiles: {example: {containers: [{name: example-sidecar, image: busybox:2}]}}\n",
    );
    let (response, patched) = admit(&injected, "shop", &other);
    assert_eq!(patched, injected);
    assert_eq!(response.response.audit_annotations["reason"], "injected-by-other-config");
    assert!(response.response.warnings[0].contains("re-create it"));
}

/// The status annotation alone says whether a Pod was injected: a copy of an injected Pod that
/// names a profile this configuration lacks is left alone, not denied. (The webhook's
/// matchConditions never send such a Pod, and must not hold back one that would be denied.)
#[test]
fn an_injected_pod_naming_an_unknown_profile_is_left_alone() {
    let (_, mut injected) = admit(&small_pod(), "shop", &Config::builtin());
    injected["metadata"]["annotations"]["sidecar-injector.io/inject"] = json!("gone");
    let (response, patched) = admit(&injected, "shop", &Config::builtin());
    assert!(response.response.allowed);
    assert_eq!(patched, injected);
    assert_eq!(response.response.audit_annotations["reason"], "injected-by-other-config");

    injected["metadata"]["annotations"].as_object_mut().unwrap().remove("sidecar-injector.io/status");
    let response = answer(&pod_review(&injected, "shop"), &Config::builtin());
    assert!(!response.response.allowed, "without the status annotation the unknown name is denied");
}

/// One row: a Pod of a shape Kubernetes never gives is refused, the message naming the field.
fn malformed_pod_refused(pod: Value, what: &str) {
    let response = answer(&pod_review(&pod, "shop"), &Config::builtin());
    assert!(!response.response.allowed, "{what}");
    let message = response.response.status.as_ref().unwrap().message.as_ref();
    assert!(message.contains(what), "{message:?} should name {what:?}");
}

rows! { malformed_pod_refused;
    malformed_labels_not_a_map: (
        json!({"metadata": {"labels": "app=web"}, "spec": {"containers": []}}),
        "metadata.labels is not an object",
    ),
    malformed_annotation_not_a_string: (
        json!({"metadata": {"annotations": {"a": 5}}, "spec": {"containers": []}}),
        "metadata.annotations.a is not a string",
    ),
    malformed_no_spec: (json!({"metadata": {}}), "it has no spec"),
    malformed_containers_not_a_list: (
        json!({"metadata": {}, "spec": {"containers": {"name": "a"}}}),
        "spec.containers is not a list",
    ),
    malformed_container_without_a_name: (
        json!({"metadata": {}, "spec": {"containers": [{"image": "x"}]}}),
        "spec.containers[0].name is missing",
    ),
    malformed_env_not_a_list: (
        json!({"metadata": {}, "spec": {"containers": [{"name": "a", "env": "X=1"}]}}),
        "spec.containers[0].env is not a list",
    ),
    malformed_host_network_not_a_boolean: (
        json!({"metadata": {}, "spec": {"containers": [], "hostNetwork": "yes"}}),
        "spec.hostNetwork is not a boolean",
    ),
}

/// One row: a Pod whose app container has `lists` (`env`, `volumeMounts`), under a configuration
/// whose profile adds `additions` to the app containers (none: the built-in one). A configuration
/// that adds to them reads those lists and refuses an item of another shape, naming it; one that
/// does not leaves them to the API server, which refuses such a Pod itself.
fn app_list_items_read(lists: Value, additions: Option<&str>, refused: Option<&str>) {
    let mut app = json!({"name": "app", "image": "x"});
    app.as_object_mut().unwrap().extend(lists.as_object().unwrap().clone());
    let pod = json!({"metadata": {}, "spec": {"containers": [app]}});
    let config = match additions {
        Some(additions) => config(&format!(
            "defaultProfiles: [p]\nprofiles:\n  p:\n    volumes: [{{name: v, emptyDir: {{}}}}]\n    appContainers: {additions}\n"
        )),
        None => Config::builtin(),
    };
    let response = answer(&pod_review(&pod, "shop"), &config);
    match refused {
        Some(what) => {
            assert!(!response.response.allowed);
            let message = response.response.status.unwrap().message.to_string();
            assert!(
                message.contains(&format!("the Pod cannot be read: {what}")),
                "{message:?} should name {what:?}"
            );
        }
        None => assert_eq!(response.response.audit_annotations["decision"], "injected"),
    }
}

rows! { app_list_items_read;
    an_env_var_without_a_name_where_a_profile_adds_env: (
        json!({"env": [{"name": "A", "value": "1"}, {"value": "2"}]}),
        Some("{env: [{name: B, value: \"3\"}]}"),
        Some("spec.containers[0].env[1].name is missing or not a string"),
    ),
    a_mount_without_a_path_where_a_profile_adds_mounts: (
        json!({"volumeMounts": [{"name": "v"}]}),
        Some("{volumeMounts: [{name: v, mountPath: /v}]}"),
        Some("spec.containers[0].volumeMounts[0].mountPath is missing or not a string"),
    ),
    neither_read_where_no_profile_adds_to_app_containers: (
        json!({"env": [{"value": "2"}], "volumeMounts": [{"name": "v"}]}), None, None,
    ),
}

/// The small Pod's review, changed by `change`.
fn review_with(change: impl FnOnce(&mut Value)) -> Value {
    let mut request = pod_review(&small_pod(), "shop");
    change(&mut request);
    request
}

/// One row: what is not a Pod CREATE is allowed untouched, with no warning, for `reason`.
fn allowed_untouched(request: Value, reason: &str) {
    let response = answer(&request, &Config::builtin());
    assert!(response.response.allowed);
    assert!(response.response.patch.is_none());
    assert!(response.response.warnings.is_empty(), "no warning for what is not ours");
    assert_eq!(response.response.audit_annotations["reason"], reason);
}

rows! { allowed_untouched;
    an_update_is_not_a_create: (
        review_with(|r| {
            r["request"]["operation"] = json!("UPDATE");
            r["request"]["oldObject"] = small_pod();
        }),
        "not-create",
    ),
    a_subresource_is_not_the_pod: (review_with(|r| r["request"]["subResource"] = json!("ephemeralcontainers")), "subresource"),
    a_deployment_is_not_a_pod: (
        review_with(|r| r["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"})),
        "not-a-pod",
    ),
    a_delete_is_not_a_create: (
        review_with(|r| {
            r["request"]["operation"] = json!("DELETE");
            r["request"]["object"] = Value::Null;
        }),
        "not-create",
    ),
}

#[test]
fn dry_run_gets_the_same_answer() {
    let config = Config::builtin();
    let request = pod_review(&small_pod(), "shop");
    let mut dry = request.clone();
    dry["request"]["dryRun"] = json!(true);
    let plain = review(&serde_json::to_vec(&request).unwrap(), &config).unwrap().body;
    let dry = review(&serde_json::to_vec(&dry).unwrap(), &config).unwrap().body;
    assert_eq!(plain, dry);
}

#[test]
fn v1beta1_is_answered_in_v1beta1() {
    let mut request = pod_review(&small_pod(), "shop");
    request["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let response = answer(&request, &Config::builtin());
    assert_eq!(response.api_version, "admission.k8s.io/v1beta1");
    assert_eq!(response.kind, "AdmissionReview");
    assert!(patch_of(&response).is_some());
}

#[test]
fn the_api_round_trip_fixture_is_answered_untouched() {
    let body = include_bytes!("fixtures/admission.k8s.io.v1.AdmissionReview.json");
    let reviewed = review(body, &Config::builtin()).unwrap();
    let response: ReviewResponse = serde_json::from_slice(&reviewed.body).unwrap();
    assert_eq!(response.api_version, "admission.k8s.io/v1");
    assert_eq!(response.response.uid, "uidValue");
    assert!(response.response.allowed);
    assert!(response.response.patch.is_none());
    assert_eq!(reviewed.summary.kind, "kindValue");
    assert_eq!(reviewed.summary.operation, Operation::Other("operationValue".into()));
}

/// A complete pod template from the Kubernetes round-trip data, with every field filled in, some
/// newer than k8s-openapi: every one of them survives injection.
#[test]
fn every_field_of_a_complete_pod_survives() {
    let deployment: Value = serde_json::from_str(include_str!("fixtures/apps.v1.Deployment.json")).unwrap();
    let pod = deployment["spec"]["template"].clone();
    let config = config(
        r#"
labels: {foo: bar}
defaultProfiles: [all]
skip: {hostNetwork: false}
profiles:
  all:
    containers: [{name: agent, image: agent}]
    sidecars: [{name: proxy, image: proxy}]
    volumes: [{name: certs, emptyDir: {}}]
    appContainers: {env: [{name: INJECTED, value: "1"}]}
"#,
    );
    let (response, patched) = admit(&pod, "shop", &config);
    assert_eq!(response.response.audit_annotations["decision"], "injected");

    // Remove exactly what was injected; what remains must be the original, field for field.
    let mut stripped = patched.clone();
    stripped["metadata"]["labels"].as_object_mut().unwrap().remove("foo");
    stripped["metadata"]["annotations"].as_object_mut().unwrap().remove("sidecar-injector.io/status");
    let spec = stripped["spec"].as_object_mut().unwrap();
    assert_eq!(spec["containers"].as_array_mut().unwrap().pop().unwrap()["name"], "agent");
    assert_eq!(spec["initContainers"].as_array_mut().unwrap().remove(0)["name"], "proxy");
    assert_eq!(spec["volumes"].as_array_mut().unwrap().pop().unwrap()["name"], "certs");
    let env = spec["containers"][0]["env"].as_array_mut().unwrap();
    assert_eq!(env.pop().unwrap(), json!({"name": "INJECTED", "value": "1"}));
    assert_eq!(stripped, pod);
    assert_eq!(
        patched["spec"]["schedulingGroup"], pod["spec"]["schedulingGroup"],
        "a field newer than k8s-openapi is kept"
    );
}

#[test]
fn bodies_that_are_not_reviews_are_errors() {
    let config = Config::builtin();
    let pod = serde_json::to_string(&small_pod()).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"apiVersion\":".to_vec(), "malformed AdmissionReview"),
        (b"not json".to_vec(), "malformed AdmissionReview"),
        (vec![0xff, 0xfe, b'{'], "malformed AdmissionReview"),
        (b"{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}".to_vec(), "not an AdmissionReview"),
        (b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}".to_vec(), "has no request"),
        (format!(r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"operation":"CREATE","object":{pod}}}}}"#).into_bytes(), "has no uid"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","object":null}}"#.to_vec(), "CREATE request has no object"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","object":[1]}}"#.to_vec(), "not a JSON object"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":"Pod","resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE"}}"#.to_vec(), "at request.kind"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","uid":"2","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","object":{}}}"#.to_vec(), "duplicate field `uid`"),
        (format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(), "malformed AdmissionReview at (top level)"),
    ];
    for (body, expected) in cases {
        let err = review(&body, &config).expect_err(expected);
        assert!(err.to_string().contains(expected), "{err} should contain {expected:?}");
        assert!(!matches!(err, ReviewError::PatchMismatch(_)));
    }
}

/// A Pod CREATE whose `metadata.<field>` is a list nested 10,000 deep.
fn deeply_nested_in(field: &str) -> Vec<u8> {
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut review = serde_json::to_string(&pod_review(
        &json!({"metadata": {field: "DEEP"}, "spec": {"containers": []}}),
        "shop",
    ))
    .unwrap();
    review = review.replace("\"DEEP\"", &deep);
    review.into_bytes()
}

/// Deep nesting in a part of the Pod that injection never reads is skipped without recursion, and
/// the review is answered.
#[test]
fn deep_nesting_where_injection_does_not_read_is_answered() {
    let reviewed = review(&deeply_nested_in("managedFields"), &Config::builtin()).unwrap();
    assert_eq!(reviewed.summary.decision.as_str(), "injected");
}

/// Deep nesting where a map belongs is skipped the same way, and the Pod refused for its shape.
#[test]
fn deep_nesting_where_a_map_belongs_is_refused_for_its_shape() {
    let reviewed = review(&deeply_nested_in("labels"), &Config::builtin()).unwrap();
    let Decision::Denied { message } = &reviewed.summary.decision else {
        panic!("{:?}", reviewed.summary.decision);
    };
    assert!(message.ends_with("the Pod cannot be read: metadata.labels is not an object"), "{message}");
}

/// A configuration with a `metrics` profile that selects by itself, beside the built-in one.
fn selecting(selection: &str) -> Config {
    config(&format!(
        "labels: {{foo: bar}}\ndefaultProfiles: [example]\nprofiles:\n  example: {{containers: [{{name: example-sidecar, image: busybox:1.37}}]}}\n  metrics: {{containers: [{{name: metrics-agent, image: agent:1}}], {selection}}}\n"
    ))
}

/// One row: with the profile `metrics` selecting as `selection`, a Pod with `labels` and
/// `annotations` in `namespace` gets exactly `expected`.
fn chosen(selection: &str, labels: Value, annotations: Value, namespace: &str, expected: &[&str]) {
    let pod = pod_with(json!({"name": "p", "labels": labels, "annotations": annotations}), json!({}));
    let (response, _) = admit(&pod, namespace, &selecting(selection));
    let profiles = response.response.audit_annotations.get("profiles").cloned().unwrap_or_default();
    assert_eq!(profiles, expected.join(","), "{:?}", response.response.audit_annotations);
}

rows! { chosen;
    selector_match_labels: ("selector: {matchLabels: {tier: web}}", json!({"tier": "web"}), json!({}), "shop", &["example", "metrics"]),
    selector_match_labels_no_match: ("selector: {matchLabels: {tier: web}}", json!({"tier": "db"}), json!({}), "shop", &["example"]),
    selector_in: (
        "selector: {matchExpressions: [{key: tier, operator: In, values: [web, api]}]}",
        json!({"tier": "api"}), json!({}), "shop", &["example", "metrics"],
    ),
    selector_not_in: (
        "selector: {matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}",
        json!({}), json!({}), "shop", &["example", "metrics"],
    ),
    selector_not_in_excludes: (
        "selector: {matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}",
        json!({"tier": "db"}), json!({}), "shop", &["example"],
    ),
    selector_exists: ("selector: {matchExpressions: [{key: metrics, operator: Exists}]}", json!({"metrics": ""}), json!({}), "shop", &["example", "metrics"]),
    selector_does_not_exist: (
        "selector: {matchExpressions: [{key: legacy, operator: DoesNotExist}]}",
        json!({"legacy": "yes"}), json!({}), "shop", &["example"],
    ),
    namespaces_match: ("namespaces: [shop]", json!({}), json!({}), "shop", &["example", "metrics"]),
    namespaces_do_not_match: ("namespaces: [shop]", json!({}), json!({}), "other", &["example"]),
    selector_and_namespaces_must_both_match: (
        "selector: {matchLabels: {tier: web}}, namespaces: [shop]",
        json!({"tier": "web"}), json!({}), "other", &["example"],
    ),
    an_annotation_naming_profiles_overrides_selection: (
        "selector: {matchLabels: {tier: web}}",
        json!({"tier": "web"}), json!({"sidecar-injector.io/inject": "example"}), "shop", &["example"],
    ),
    an_annotation_true_gets_defaults_and_selected: (
        "selector: {matchLabels: {tier: web}}",
        json!({"tier": "web"}), json!({"sidecar-injector.io/inject": "true"}), "shop", &["example", "metrics"],
    ),
}

#[test]
fn an_opt_out_beats_a_matching_selector() {
    let pod = pod_with(
        json!({"labels": {"tier": "web"}, "annotations": {"sidecar-injector.io/inject": "false"}}),
        json!({}),
    );
    assert_eq!(skipped_reason(&pod, "shop", &selecting("selector: {matchLabels: {tier: web}}")), "opted-out");
}

#[test]
fn a_selector_injects_even_when_injection_is_off_by_default() {
    let off = config(
        "injectByDefault: false\nprofiles: {metrics: {containers: [{name: agent, image: a}], namespaces: [shop]}}\n",
    );
    let (response, _) = admit(&small_pod(), "shop", &off);
    assert_eq!(response.response.audit_annotations["profiles"], "metrics");
    assert_eq!(skipped_reason(&small_pod(), "other", &off), "not-requested");
}

#[test]
fn explain_says_which_rule_chose_each_profile() {
    let pod = pod_with(json!({"name": "p", "labels": {"tier": "web"}}), json!({}));
    let body = serde_json::to_vec(&pod_review(&pod, "shop")).unwrap();
    let reviewed = review(&body, &selecting("selector: {matchLabels: {tier: web}}")).unwrap();
    let rules: Vec<(String, String)> =
        reviewed.chosen.iter().map(|c| (c.profile.clone(), c.rule.to_string())).collect();
    assert_eq!(
        rules,
        [
            ("example".to_owned(), "a default profile (defaultProfiles)".to_owned()),
            ("metrics".to_owned(), "its selector and namespaces match the Pod".to_owned()),
        ]
    );
}

/// One row: an injected mount of a volume the resulting Pod would not have is handled by the
/// profile's onError, the message naming the mount; never a patch the API server would refuse.
fn dangling_mount(profile: &str, on_error: &str, allowed: bool, what: &str) {
    let config =
        config(&format!("defaultProfiles: [p]\nprofiles: {{p: {{{profile}, onError: {on_error}}}}}\n"));
    let response = answer(&pod_review(&small_pod(), "shop"), &config);
    assert_eq!(response.response.allowed, allowed);
    assert!(response.response.patch.is_none(), "never a patch");
    let said = match &response.response.status {
        Some(status) => status.message.to_string(),
        None => response.response.warnings.join("; "),
    };
    assert!(said.contains(what), "{said:?} should name {what:?}");
}

rows! { dangling_mount;
    a_sidecar_mounting_a_volume_nobody_adds_is_denied: (
        "sidecars: [{name: agent, image: a, volumeMounts: [{name: logs, mountPath: /logs}]}]",
        "deny", false, "container \"agent\" mounts volume \"logs\", which the Pod does not have",
    ),
    a_sidecar_mounting_a_volume_nobody_adds_is_allowed_unchanged: (
        "containers: [{name: agent, image: a, volumeMounts: [{name: logs, mountPath: /logs}]}]",
        "allow", true, "mounts volume \"logs\", which the Pod does not have",
    ),
    an_app_mount_of_a_volume_nobody_adds_is_denied: (
        "appContainers: {volumeMounts: [{name: certs, mountPath: /certs}]}",
        "deny", false, "mounts volume \"certs\" in the app containers",
    ),
}

/// One message names every problem: a container name the Pod has and a mount of a volume it
/// does not, in one profile.
#[test]
fn a_clash_and_a_dangling_mount_are_both_named() {
    let config = config(
        "defaultProfiles: [p]\nprofiles: {p: {containers: [{name: app, image: a, volumeMounts: [{name: logs, mountPath: /logs}]}]}}\n",
    );
    let response = answer(&pod_review(&small_pod(), "shop"), &config);
    assert!(!response.response.allowed);
    let message = response.response.status.unwrap().message.to_string();
    assert!(message.contains("adds container \"app\", which the Pod already has"), "{message}");
    assert!(message.contains("mounts volume \"logs\", which the Pod does not have"), "{message}");
}

#[test]
fn a_mount_of_a_volume_the_profile_adds_is_injected() {
    let config = config(
        "defaultProfiles: [p]\nprofiles: {p: {sidecars: [{name: agent, image: a, volumeMounts: [{name: logs, mountPath: /logs}]}], volumes: [{name: logs, emptyDir: {}}]}}\n",
    );
    let (response, patched) = admit(&small_pod(), "shop", &config);
    assert!(response.response.allowed);
    assert_eq!(patched["spec"]["volumes"][0]["name"], "logs");
}

/// One row: a Pod that already has one of the configuration's labels or annotations, with another
/// value, keeps its own, and the API server's user is told so.
fn own_value_kept_with_a_warning(config_line: &str, metadata: Value, field: &str, key: &str, warning: &str) {
    let pod = pod_with(metadata.clone(), json!({"containers": [{"name": "app", "image": "x"}]}));
    let (response, patched) = admit(&pod, "shop", &config_with(config_line));
    assert!(response.response.allowed);
    assert_eq!(patched["metadata"][field][key], metadata[field][key], "the Pod's own value is kept");
    assert_eq!(patched["spec"]["containers"][1]["name"], "example-sidecar", "the rest is still injected");
    let warnings = &response.response.warnings;
    assert!(warnings.iter().any(|w| w == warning), "{warnings:?}");
}

rows! { own_value_kept_with_a_warning;
    // The built-in configuration's own label, foo=bar.
    a_label_the_pod_sets_otherwise: ("annotations: {}", json!({"labels": {"foo": "baz"}}), "labels", "foo",
        r#"sidecar-injector: label foo is kept as "baz", not set to "bar""#),
    an_annotation_the_pod_sets_otherwise: ("annotations: {team: platform}", json!({"annotations": {"team": "shop"}}),
        "annotations", "team", "sidecar-injector: annotation team is kept as the Pod has it"),
}

/// One row: a name the injection would add twice is refused (`onError: deny`), with the clash
/// named, and no patch.
fn a_clash_is_refused(profiles: &str, spec: Value, named: &str) {
    let config = config(&format!("defaultProfiles: [a, b]\nprofiles: {profiles}\n"));
    let pod = pod_with(json!({}), spec);
    let response = answer(&pod_review(&pod, "shop"), &config);
    assert!(!response.response.allowed, "a clash is refused");
    assert!(response.response.patch.is_none());
    let message = response.response.status.unwrap().message.to_string();
    assert!(message.contains(named), "{message}");
}

const TWO_PROFILES: &str =
    "{a: {volumes: [{name: data, emptyDir: {}}]}, b: {containers: [{name: agent, image: x}]}}";

rows! { a_clash_is_refused;
    a_volume_the_pod_already_has: (TWO_PROFILES, json!({"volumes": [{"name": "data", "emptyDir": {}}]}),
        r#"profile "a" adds volume "data", which the Pod already has"#),
    an_init_container_the_pod_already_has: (
        "{a: {initContainers: [{name: setup, image: x}]}, b: {}}",
        json!({"initContainers": [{"name": "setup", "image": "mine"}]}),
        r#"profile "a" adds container "setup", which the Pod already has"#),
    a_sidecar_named_as_an_app_container: (
        "{a: {sidecars: [{name: a, image: x}]}, b: {}}", json!({}),
        r#"profile "a" adds container "a", which the Pod already has"#),
    a_container_two_profiles_add: (
        "{a: {containers: [{name: agent, image: x}]}, b: {containers: [{name: agent, image: z}]}}", json!({}),
        r#"profile "b" adds container "agent", which another selected profile adds too"#),
    a_volume_two_profiles_add: (
        "{a: {volumes: [{name: data, emptyDir: {}}]}, b: {volumes: [{name: data, emptyDir: {}}]}}", json!({}),
        r#"profile "b" adds volume "data", which another selected profile adds too"#),
}
