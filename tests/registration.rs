//! The webhook's registration: the generated `matchConditions` for each kind of configuration, the
//! fallback when selectors are too many, and the manifests of deploy-incluster/ and deploy-lambda/
//! kept equal to what `webhook-config` prints. tests/e2e_match_conditions.py holds the conditions
//! themselves to the real API server.

use serde_json::{Value, json};
use sidecar_injector::Config;
use sidecar_injector::engine::registration::{
    Client, MAX_EXPRESSION, any_configuration, match_conditions, webhook_configuration,
};

mod common;
use common::{config, rows};

fn names(config: &Config) -> Vec<&'static str> {
    match_conditions(config).conditions.iter().map(|c| c.name).collect()
}

fn expression(config: &Config, name: &str) -> String {
    let generated = match_conditions(config);
    let found = generated.conditions.iter().find(|c| c.name == name);
    found.unwrap_or_else(|| panic!("no condition {name}")).expression.clone()
}

/// Which conditions a configuration gets, and a part of one that says what it must.
fn check(yaml: &str, wanted: &[&str], condition: &str, says: &str) {
    let config = config(yaml);
    assert_eq!(names(&config), wanted);
    assert!(match_conditions(&config).broadened.is_none());
    let text = expression(&config, condition);
    assert!(text.contains(says), "{condition}: {text}\n  should hold: {says}");
}

const ALWAYS: [&str; 2] = ["not-opted-out", "not-injected"];

rows! { check;
    builtin_skips_namespaces_and_host_network: (
        "{}", &[ALWAYS[0], ALWAYS[1], "namespace-not-skipped", "not-host-network"],
        "namespace-not-skipped", "!(request.namespace in ['kube-system', 'kube-public', 'kube-node-lease'])",
    ),
    opt_out_is_read_as_the_engine_reads_it: (
        "{}", &[ALWAYS[0], ALWAYS[1], "namespace-not-skipped", "not-host-network"],
        "not-opted-out", "object.metadata.labels['sidecar-injector.io/inject'].trim().lowerAscii() == 'false'",
    ),
    no_skip_rules_no_conditions_for_them: (
        "skip: {namespaces: [], hostNetwork: false}", &ALWAYS, "not-injected",
        "'sidecar-injector.io/status' in object.metadata.annotations",
    ),
    inject_by_default_with_no_defaults_changes_every_pod: (
        "injectByDefault: true\ndefaultProfiles: []\nskip: {namespaces: [], hostNetwork: false}\nprofiles: {p: {selector: {matchLabels: {a: b}}}}",
        &ALWAYS, "not-opted-out", "!(",
    ),
    off_by_default_asks_for_the_annotation: (
        "injectByDefault: false\nskip: {namespaces: [], hostNetwork: false}", &[ALWAYS[0], ALWAYS[1], "requested"],
        "requested", "(has(object.metadata.annotations) && 'sidecar-injector.io/inject' in object.metadata.annotations)",
    ),
    match_labels: (
        "injectByDefault: false\nprofiles: {p: {selector: {matchLabels: {app: web}}}}",
        &[ALWAYS[0], ALWAYS[1], "namespace-not-skipped", "not-host-network", "requested"],
        "requested", "((has(object.metadata.labels) && 'app' in object.metadata.labels) && object.metadata.labels['app'] == 'web')",
    ),
    operator_in: (
        "injectByDefault: false\nprofiles: {p: {selector: {matchExpressions: [{key: tier, operator: In, values: [b, a]}]}}}",
        &[ALWAYS[0], ALWAYS[1], "namespace-not-skipped", "not-host-network", "requested"],
        "requested", "object.metadata.labels['tier'] in ['a', 'b'])",
    ),
    operator_not_in_matches_an_absent_label: (
        "injectByDefault: false\nprofiles: {p: {selector: {matchExpressions: [{key: team, operator: NotIn, values: [b]}]}}}",
        &[ALWAYS[0], ALWAYS[1], "namespace-not-skipped", "not-host-network", "requested"],
        "requested", "(!((has(object.metadata.labels) && 'team' in object.metadata.labels) && object.metadata.labels['team'] in ['b']))",
    ),
    operator_exists: (
        "injectByDefault: false\nprofiles: {p: {selector: {matchExpressions: [{key: logs, operator: Exists}]}}}",
        &[ALWAYS[0], ALWAYS[1], "namespace-not-skipped", "not-host-network", "requested"],
        "requested", "|| ((has(object.metadata.labels) && 'logs' in object.metadata.labels))",
    ),
    operator_does_not_exist: (
        "injectByDefault: false\nprofiles: {p: {selector: {matchExpressions: [{key: logs, operator: DoesNotExist}]}}}",
        &[ALWAYS[0], ALWAYS[1], "namespace-not-skipped", "not-host-network", "requested"],
        "requested", "|| (!(has(object.metadata.labels) && 'logs' in object.metadata.labels))",
    ),
    namespaces_join_the_selector: (
        "injectByDefault: false\nprofiles: {p: {selector: {matchLabels: {a: b}}, namespaces: [shop]}}",
        &[ALWAYS[0], ALWAYS[1], "namespace-not-skipped", "not-host-network", "requested"],
        "requested", "object.metadata.labels['a'] == 'b') && request.namespace in ['shop'])",
    ),
    empty_selector_selects_every_pod: (
        "injectByDefault: false\nprofiles: {p: {selector: {}}}",
        &[ALWAYS[0], ALWAYS[1], "namespace-not-skipped", "not-host-network", "requested"],
        "requested", "|| (true)",
    ),
}

#[test]
fn a_profile_chosen_only_by_name_is_only_the_annotation() {
    let config = config("injectByDefault: false\nprofiles: {named: {}}");
    let requested = expression(&config, "requested");
    assert_eq!(
        requested,
        "(has(object.metadata.annotations) && 'sidecar-injector.io/inject' in object.metadata.annotations)"
    );
}

#[test]
fn too_many_selectors_leave_out_the_requested_condition_and_say_so() {
    let profiles: String = (0..40)
        .map(|i| format!("  p{i}: {{selector: {{matchExpressions: [{{key: app, operator: In, values: [web{i}, api{i}]}}]}}}}\n"))
        .collect();
    let config = config(&format!("injectByDefault: false\nprofiles:\n{profiles}"));
    let generated = match_conditions(&config);
    assert_eq!(names(&config), [ALWAYS[0], ALWAYS[1], "namespace-not-skipped", "not-host-network"]);
    let why = generated.broadened.expect("broadened");
    assert!(why.contains(&format!("over {MAX_EXPRESSION}")) && why.contains("sent too"), "{why}");
}

#[test]
fn never_more_than_the_api_servers_64() {
    let profiles: String =
        (0..100).map(|i| format!("  p{i}: {{selector: {{matchLabels: {{k{i}: v}}}}}}\n")).collect();
    let config = config(&format!("injectByDefault: false\nprofiles:\n{profiles}"));
    assert!(match_conditions(&config).conditions.len() <= 64);
}

/// A manifest, and what `webhook-config` prints for the built-in configuration, but for the
/// `matchConditions`: the manifest's are `conditions` (`None`: it has none).
fn compare(path: &str, client: Client, conditions: Option<Value>) {
    let manifest: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut generated = webhook_configuration(&Config::builtin(), &client);
    let webhook = generated["webhooks"][0].as_object_mut().unwrap();
    match conditions {
        Some(conditions) => webhook.insert("matchConditions".into(), conditions),
        None => webhook.remove("matchConditions"),
    };
    assert_eq!(manifest, generated, "{path} differs from `sidecar-injector webhook-config`");
}

#[test]
fn the_in_cluster_manifest_leaves_the_conditions_to_the_replicas() {
    let client = Client::Service { namespace: "sidecar-injector".into(), name: "sidecar-injector".into() };
    compare("deploy-incluster/70-mutatingwebhookconfiguration.yaml", client, None);
}

#[test]
fn the_lambda_manifest_holds_the_conditions_of_any_configuration() {
    let client = Client::Url("WEBHOOK_URL".into());
    compare("deploy-lambda/mutatingwebhookconfiguration.yaml", client, Some(json!(any_configuration())));
}
