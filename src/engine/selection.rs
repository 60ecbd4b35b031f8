//! Where a profile applies by itself: a label selector over the Pod's labels and a list of
//! namespaces, checked as `metav1.LabelSelector` is checked, and the rule that chose each profile.
//!
//! Namespaces are names, not patterns: the webhook's own `namespaceSelector` already says which
//! namespaces are sent at all, by label, and a pattern such as `team-*` would quietly start
//! matching a namespace created next year. A profile that should follow a group of namespaces
//! follows a label on them through that selector.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_core::{Expression, Selector, SelectorExt};

use super::error::ConfigError;
use super::names;

/// A profile's own selection; empty when it has neither, and is then chosen only by name or as a
/// default profile.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    selector: Option<Selector>,
    /// The label keys the selector reads.
    keys: Vec<String>,
    namespaces: Vec<String>,
}

/// A profile injected into a Pod, and the rule that chose it, for `review --explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub profile: String,
    pub rule: Rule,
}

/// Which rule chose a profile for a Pod (docs/configuration.md, "Which profiles a Pod gets").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// The Pod's `sidecar-injector.io/inject` annotation names it.
    Named,
    /// It is one of `defaultProfiles`, with `injectByDefault` or an annotation `"true"`.
    Default,
    /// Its own `selector` and `namespaces` match the Pod.
    Selected,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rule::Named => "named by the Pod's sidecar-injector.io/inject annotation",
            Rule::Default => "a default profile (defaultProfiles)",
            Rule::Selected => "its selector and namespaces match the Pod",
        })
    }
}

impl Selection {
    /// `selector` and `namespaces` as written at `path`, checked.
    pub fn compile(
        selector: Option<&LabelSelector>,
        namespaces: &[String],
        path: &str,
    ) -> Result<Selection, ConfigError> {
        for (i, namespace) in namespaces.iter().enumerate() {
            if let Err(why) = names::dns_label(namespace) {
                return Err(ConfigError::at(
                    format!("{path}.namespaces[{i}]"),
                    format!("namespace name {why}"),
                ));
            }
        }
        let keys = selector.map(label_keys).unwrap_or_default();
        let selector = selector.map(|s| check_selector(s, &format!("{path}.selector"))).transpose()?;
        Ok(Selection { selector, keys, namespaces: namespaces.to_vec() })
    }

    /// Whether the profile selects anything by itself.
    pub fn is_empty(&self) -> bool {
        self.selector.is_none() && self.namespaces.is_empty()
    }

    /// Whether the selector reads the label `key`.
    pub fn reads_label(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    /// Both parts that are given match: the Pod's labels, and its namespace.
    pub fn matches(&self, labels: &BTreeMap<String, String>, namespace: &str) -> bool {
        !self.is_empty()
            && self.selector.as_ref().is_none_or(|s| s.matches(labels))
            && (self.namespaces.is_empty() || self.namespaces.iter().any(|ns| ns == namespace))
    }
}

impl Selection {
    /// Where the profile applies by itself, as a CEL condition over the Pod and the request (for
    /// the webhook's `matchConditions`); `None` when it does not apply by itself.
    pub fn cel(&self) -> Option<String> {
        use super::cel::{has_key, list, quote, value_of};
        if self.is_empty() {
            return None;
        }
        let label = |key: &str| has_key("labels", key);
        let value = |key: &str| value_of("labels", key);
        let values = |set: std::collections::BTreeSet<String>| list(&set.into_iter().collect::<Vec<_>>());
        let mut all: Vec<String> = self
            .selector
            .clone()
            .into_iter()
            .flatten()
            .map(|requirement| match requirement {
                Expression::In(key, set) => {
                    format!("({} && {} in {})", label(&key), value(&key), values(set))
                }
                Expression::NotIn(key, set) => {
                    format!("!({} && {} in {})", label(&key), value(&key), values(set))
                }
                Expression::Equal(key, v) => format!("({} && {} == {})", label(&key), value(&key), quote(&v)),
                Expression::NotEqual(key, v) => {
                    format!("!({} && {} == {})", label(&key), value(&key), quote(&v))
                }
                Expression::Exists(key) => label(&key),
                Expression::DoesNotExist(key) => format!("!{}", label(&key)),
            })
            .collect();
        if !self.namespaces.is_empty() {
            all.push(format!("request.namespace in {}", list(&self.namespaces)));
        }
        Some(if all.is_empty() { "true".into() } else { all.join(" && ") })
    }
}

fn label_keys(selector: &LabelSelector) -> Vec<String> {
    let labels = selector.match_labels.iter().flatten().map(|(key, _)| key.clone());
    labels.chain(selector.match_expressions.iter().flatten().map(|r| r.key.clone())).collect()
}

/// The rules of `metav1.LabelSelector`: keys are qualified names and values label values; `In`
/// and `NotIn` need values, `Exists` and `DoesNotExist` take none; no other operator.
fn check_selector(selector: &LabelSelector, path: &str) -> Result<Selector, ConfigError> {
    for (key, value) in selector.match_labels.iter().flatten() {
        let at = format!("{path}.matchLabels.{key}");
        names::qualified_name(key).map_err(|why| ConfigError::at(&at, format!("key {why}")))?;
        names::label_value(value).map_err(|why| ConfigError::at(&at, format!("value {why}")))?;
    }
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        let at = |field: &str| format!("{path}.matchExpressions[{i}].{field}");
        let key = &requirement.key;
        names::qualified_name(key).map_err(|why| ConfigError::at(at("key"), format!("key {why}")))?;
        let values = requirement.values.as_deref().unwrap_or_default();
        match (requirement.operator.as_str(), values.is_empty()) {
            ("In" | "NotIn", true) => return Err(ConfigError::at(at("values"), "In and NotIn need values")),
            ("Exists" | "DoesNotExist", false) => {
                return Err(ConfigError::at(at("values"), "Exists and DoesNotExist take no values"));
            }
            ("In" | "NotIn" | "Exists" | "DoesNotExist", _) => {}
            (other, _) => {
                let message = format!("{other:?} is not one of In, NotIn, Exists, DoesNotExist");
                return Err(ConfigError::at(at("operator"), message));
            }
        }
        for (j, value) in values.iter().enumerate() {
            let at = format!("{}[{j}]", at("values"));
            names::label_value(value).map_err(|why| ConfigError::at(at, format!("value {why}")))?;
        }
    }
    Selector::try_from(selector.clone()).map_err(|e| ConfigError::at(path, e.to_string()))
}
