//! The configuration file's shape, as serde reads it. Our own structs deny unknown fields; the
//! Kubernetes types ignore them, which is why [`first_unknown_field`] compares the input with its
//! round trip.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Volume, VolumeMount};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::OnError;

// The file's shape. Our own structs deny unknown fields; the Kubernetes types ignore them, which is
// why `unknown_fields` below compares the input with its round trip.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub inject_by_default: bool,
    #[serde(default)]
    pub default_profiles: Vec<String>,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default)]
    pub profiles: BTreeMap<String, RawProfile>,
    #[serde(default)]
    pub skip: RawSkip,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawProfile {
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub init_containers: Vec<Container>,
    #[serde(default)]
    pub sidecars: Vec<Container>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub app_containers: RawAppContainers,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub on_error: OnError,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawAppContainers {
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawSkip {
    #[serde(default = "system_namespaces")]
    pub namespaces: Vec<String>,
    #[serde(default = "yes")]
    pub host_network: bool,
}

impl Default for RawSkip {
    fn default() -> Self {
        RawSkip { namespaces: system_namespaces(), host_network: true }
    }
}

fn yes() -> bool {
    true
}

fn system_namespaces() -> Vec<String> {
    ["kube-system", "kube-public", "kube-node-lease"].map(String::from).to_vec()
}

/// The path of the first key that is in `input` but was dropped by the typed round trip: a field
/// the Kubernetes types do not know, most often a typo. `null` values are dropped legitimately.
pub(super) fn first_unknown_field(input: &Value, round_trip: &Value, path: String) -> Option<String> {
    match (input, round_trip) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(key, value)| {
            let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            match b.get(key) {
                None if value.is_null() => None,
                None => Some(child),
                Some(twin) => first_unknown_field(value, twin, child),
            }
        }),
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_unknown_field(x, y, format!("{path}[{i}]"))),
        _ => None,
    }
}
