//! How the webhook is registered for a configuration: the `MutatingWebhookConfiguration`, and in it
//! the `matchConditions` derived from the configuration, CEL expressions the API server evaluates
//! before it calls the webhook, so that a Pod the configuration would leave alone costs no call,
//! and is created even while every replica is down.
//!
//! The API server calls the webhook only when every condition is true. Each condition here is
//! conservative: it is false only for a Pod that `inject::decide` skips, so it may send a Pod that
//! is then left alone, never hold back one that would be injected. tests/e2e_match_conditions.py
//! holds that to the real API server.
//!
//! ```
//! use sidecar_injector_engine::{Config, registration::match_conditions};
//!
//! let config = Config::from_yaml("injectByDefault: false\nprofiles: {p: {selector: {matchLabels: {app: web}}}}")
//!     .unwrap();
//! let generated = match_conditions(&config);
//! let names: Vec<&str> = generated.conditions.iter().map(|c| c.name).collect();
//! assert_eq!(names, ["not-opted-out", "not-injected", "namespace-not-skipped", "not-host-network", "requested"]);
//! assert!(generated.conditions[4].expression.contains("object.metadata.labels['app'] == 'web'"));
//! ```

use serde::Serialize;
use serde_json::{Value, json};

use super::cel::{has_key, list, value_of};
use super::config::{Config, keys};
use super::decision::SkipReason;

/// Where the API server sends reviews.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Client {
    /// The in-cluster Service (deploy-incluster/), whose caBundle each replica writes at start.
    Service { namespace: String, name: String },
    /// A URL with a public certificate: the Lambda's Function URL and its path token.
    Url(String),
}

/// The object's and the webhook's names, as every manifest and `--self-managed` use them.
pub const CONFIGURATION_NAME: &str = "sidecar-injector";
pub const WEBHOOK_NAME: &str = "inject.sidecar-injector.io";
/// The route the server serves reviews on, under a Service (the Lambda adds its path token).
pub const MUTATE_PATH: &str = "/mutate";

/// The whole `MutatingWebhookConfiguration` for `config`, as deploy-incluster/ and deploy-lambda/
/// hold it (a test keeps them equal), for GitOps and for the Lambda's deployment.
///
/// `reinvocationPolicy: Never`: after our patch the API server's ServiceAccount admission mounts
/// the token into the sidecar, and `IfNeeded` then called us again for a review that changes
/// nothing (the status annotation says the Pod is injected). A container another webhook adds
/// after us does not get `appContainers` additions either way.
pub fn webhook_configuration(config: &Config, client: &Client) -> Value {
    let client_config = match client {
        Client::Service { namespace, name } => {
            json!({"service": {"name": name, "namespace": namespace, "path": MUTATE_PATH, "port": 443}})
        }
        Client::Url(url) => json!({ "url": url }),
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION_NAME, "labels": {"app.kubernetes.io/name": "sidecar-injector"}},
        "webhooks": [{
            "name": WEBHOOK_NAME,
            "clientConfig": client_config,
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {keys::INJECT: "enabled"}},
            "objectSelector": {"matchExpressions": [{"key": keys::INJECT, "operator": "NotIn", "values": ["false"]}]},
            "matchConditions": match_conditions(config).conditions,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "reinvocationPolicy": "Never",
            "matchPolicy": "Equivalent",
        }],
    })
}

/// One of the webhook's `matchConditions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MatchCondition {
    pub name: &'static str,
    pub expression: String,
}

/// The conditions for a configuration, and why any was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Generated {
    pub conditions: Vec<MatchCondition>,
    /// Set when the profiles' selection was too large to express: every Pod the other conditions
    /// pass is then sent, and this says so.
    pub broadened: Option<String>,
}

/// The longest `requested` expression generated. The API server estimates each expression's cost
/// when the configuration is written and refuses one over its budget; a selection this size stays
/// far inside it (tests/e2e_match_conditions.py writes one).
pub const MAX_EXPRESSION: usize = 4096;

/// The `matchConditions` for `config`: at most five, far inside the API server's 64. With
/// `injectByDefault: true` only the opt-outs and the skip rules can be said; with `false`, also
/// that the Pod asks (the annotation) or a profile's selection matches it.
pub fn match_conditions(config: &Config) -> Generated {
    let mut conditions = any_configuration();
    if !config.skip_namespaces.is_empty() {
        let skipped = format!("request.namespace in {}", list(&config.skip_namespaces));
        conditions.push(condition("namespace-not-skipped", format!("!({skipped})")));
    }
    if config.skip_host_network {
        let host = "has(object.spec.hostNetwork) && object.spec.hostNetwork == true";
        conditions.push(condition("not-host-network", format!("!({host})")));
    }
    let mut broadened = None;
    // With injectByDefault every Pod that reaches this point is changed: it gets the default
    // profiles, and with none, the configuration's labels and the status annotation.
    if !config.inject_by_default {
        let selected = config.profiles.values().filter_map(|p| p.selection.cel());
        let any =
            std::iter::once(has_key("annotations", keys::INJECT)).chain(selected.map(|s| format!("({s})")));
        let requested = any.collect::<Vec<_>>().join(" || ");
        if requested.len() <= MAX_EXPRESSION {
            conditions.push(condition("requested", requested));
        } else {
            broadened = Some(format!(
                "the profiles' selectors make a condition of {} characters, over {MAX_EXPRESSION}: Pods that \
                 no profile selects are sent too, and left alone",
                requested.len()
            ));
        }
    }
    Generated { conditions, broadened }
}

/// The condition that keeps back a Pod the engine skips for `reason`, when the configuration's
/// conditions hold it (`audit` reports such a Pod as never sent). The status annotation's is left
/// out: a Pod made again from its template does not carry it, and is sent.
pub fn keeping_back(reason: SkipReason) -> Option<&'static str> {
    match reason {
        SkipReason::OptedOut => Some("not-opted-out"),
        SkipReason::Namespace => Some("namespace-not-skipped"),
        SkipReason::HostNetwork => Some("not-host-network"),
        SkipReason::NotRequested => Some("requested"),
        _ => None,
    }
}

/// The conditions that hold whatever the configuration: a Pod opted out, or injected before (or
/// copied from one that was), is left as it is. deploy-lambda/ registers these alone, not knowing
/// the configuration the function is given.
pub fn any_configuration() -> Vec<MatchCondition> {
    vec![
        condition("not-opted-out", format!("!({} || {})", opted_out("annotations"), opted_out("labels"))),
        condition("not-injected", format!("!{}", has_key("annotations", keys::STATUS))),
    ]
}

fn condition(name: &'static str, expression: String) -> MatchCondition {
    MatchCondition { name, expression }
}

/// The opt-out in `field`, read as the engine reads it: any case, surrounding space trimmed.
fn opted_out(field: &str) -> String {
    let value = value_of(field, keys::INJECT);
    format!("({} && {value}.trim().lowerAscii() == 'false')", has_key(field, keys::INJECT))
}
