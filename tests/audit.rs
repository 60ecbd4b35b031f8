//! The audit's classification of one stored Pod, without a cluster: each row a test case. The
//! whole command runs against a real API server in tests/e2e_audit.py.
#![cfg(feature = "audit")]

mod common;

use common::*;
use kube::core::Selector;
use serde_json::{Value, json};
use sidecar_injector::Config;
use sidecar_injector::audit::{Class, classify};

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
    let (class, reason) = classify(&pod, namespace, &object_selector(), &Config::builtin());
    assert_eq!(class, expected, "{reason}");
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
