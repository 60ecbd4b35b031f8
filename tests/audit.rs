//! The audit's classification of one stored Pod, without a cluster: each row a test case. The
//! whole command runs against a real API server in tests/e2e_audit.py.
#![cfg(feature = "audit")]

mod common;

use common::*;
use kube::core::Selector;
use serde_json::{Value, json};
use sidecar_injector::Config;
use sidecar_injector::audit::{Class, classify};
use sidecar_injector::engine::registration::match_conditions;

/// The deploy's objectSelector: Pods labelled sidecar-injector.io/inject=false are never sent.
fn object_selector() -> Selector {
    let selector = json!({"matchExpressions": [{"key": "sidecar-injector.io/inject", "operator": "NotIn", "values": ["false"]}]});
    Selector::try_from(
        serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(selector)
            .unwrap(),
    )
    .unwrap()
}

/// The small Pod as the API server stores it after the built-in configuration injected it.
fn injected_by(config: &Config) -> Value {
    admit(&small_pod(), "shop", config).1
}

fn classified(pod: Value, namespace: &str, expected: Class) {
    let (class, reason) = classify(&pod, namespace, &object_selector(), &[], &Config::builtin());
    assert_eq!(class, expected, "{reason}");
}

/// One row under live matchConditions that are those `config` generates.
fn classified_under_conditions(pod: Value, namespace: &str, config: Config, expected: Class, says: &str) {
    let live: Vec<String> = match_conditions(&config).conditions.iter().map(|c| c.name.to_owned()).collect();
    let (class, reason) = classify(&pod, namespace, &object_selector(), &live, &config);
    assert_eq!(class, expected, "{reason}");
    assert!(reason.contains(says), "{reason:?} should say {says:?}");
}

const OFF_BY_DEFAULT: &str =
    "injectByDefault: false\nprofiles: {web: {selector: {matchLabels: {tier: front}}}}";

fn on_the_host_network() -> Value {
    let mut pod = small_pod();
    pod["spec"]["hostNetwork"] = json!(true);
    pod
}

rows! { classified_under_conditions;
    conditions_keep_back_an_annotation_opt_out: (
        with(small_pod(), "/metadata", json!({"name": "web", "annotations": {"sidecar-injector.io/inject": " False"}})),
        "shop", Config::builtin(), Class::NotSelected, "matchConditions keep it back (not-opted-out)",
    ),
    conditions_keep_back_a_skipped_namespace: (
        small_pod(), "kube-system", Config::builtin(), Class::NotSelected, "(namespace-not-skipped)",
    ),
    conditions_keep_back_a_host_network_pod: (
        on_the_host_network(), "shop", Config::builtin(), Class::NotSelected, "(not-host-network)",
    ),
    conditions_keep_back_a_pod_nothing_selects: (
        small_pod(), "shop", config(OFF_BY_DEFAULT), Class::NotSelected, "(requested)",
    ),
    an_empty_annotation_is_sent_and_skipped: (
        with(small_pod(), "/metadata", json!({"name": "web", "annotations": {"sidecar-injector.io/inject": " "}})),
        "shop", config(OFF_BY_DEFAULT), Class::Skipped, "not injected (not-requested)",
    ),
    a_stale_pod_stays_stale_under_conditions: (
        injected_by(&config("labels: {foo: baz}\n")), "shop", Config::builtin(), Class::Stale, "not injected (injected-by-other-config)",
    ),
    a_selected_pod_is_missed_under_conditions: (
        with(small_pod(), "/metadata/labels", json!({"tier": "front"})), "shop", config(OFF_BY_DEFAULT), Class::Missed,
        "injected: web",
    ),
}

fn with(mut pod: Value, pointer: &str, value: Value) -> Value {
    *pod.pointer_mut(pointer).unwrap() = value;
    pod
}

rows! { classified;
    injected_with_todays_configuration_is_current: (injected_by(&Config::builtin()), "shop", Class::Current),
    injected_with_another_configuration_is_stale: (injected_by(&config("labels: {foo: baz}\n")), "shop", Class::Stale),
    never_injected_is_missed: (small_pod(), "shop", Class::Missed),
    opted_out_by_label_is_not_selected: (
        with(small_pod(), "/metadata/labels", json!({"sidecar-injector.io/inject": "false"})),
        "shop",
        Class::NotSelected,
    ),
    opted_out_by_annotation: (
        with(small_pod(), "/metadata", json!({"name": "web", "annotations": {"sidecar-injector.io/inject": "false"}})),
        "shop",
        Class::OptedOut,
    ),
    in_a_skipped_namespace: (small_pod(), "kube-system", Class::Skipped),
    asking_for_a_profile_that_does_not_exist_is_denied: (
        with(small_pod(), "/metadata", json!({"name": "web", "annotations": {"sidecar-injector.io/inject": "nope"}})),
        "shop",
        Class::Denied,
    ),
}
