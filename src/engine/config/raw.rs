//! The configuration file's shape, as serde reads it. Our own structs deny unknown fields; the
//! Kubernetes types ignore them, which is why [`first_unknown_field`] compares the input with its
//! round trip.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::OnError;

/// Every field may be left out: a missing one takes its value from `Default`.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(super) struct RawConfig {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub inject_by_default: bool,
    pub default_profiles: Vec<String>,
    pub on_error: OnError,
    pub profiles: BTreeMap<String, RawProfile>,
    pub skip: RawSkip,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            inject_by_default: true,
            default_profiles: Vec::new(),
            on_error: OnError::default(),
            profiles: BTreeMap::new(),
            skip: RawSkip::default(),
        }
    }
}

/// Container templates, as the Kubernetes types read them.
pub(super) type RawContainers = Vec<Container>;

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(super) struct RawProfile {
    pub containers: RawContainers,
    pub init_containers: RawContainers,
    pub sidecars: RawContainers,
    pub volumes: Vec<Volume>,
    pub app_containers: RawAppContainers,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub on_error: OnError,
    pub selector: Option<LabelSelector>,
    pub namespaces: Vec<String>,
    pub parameters: BTreeMap<String, RawParameter>,
    pub copy_env: Option<RawCopyEnv>,
    pub share_volume_mounts: Option<RawShareVolumeMounts>,
    pub image_pull_secrets: Vec<RawSecretRef>,
    pub restricted_defaults: bool,
}

impl Default for RawProfile {
    fn default() -> Self {
        RawProfile {
            containers: Vec::new(),
            init_containers: Vec::new(),
            sidecars: Vec::new(),
            volumes: Vec::new(),
            app_containers: RawAppContainers::default(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            on_error: OnError::default(),
            selector: None,
            namespaces: Vec::new(),
            parameters: BTreeMap::new(),
            copy_env: None,
            share_volume_mounts: None,
            image_pull_secrets: Vec::new(),
            restricted_defaults: true,
        }
    }
}

/// An `imagePullSecrets` item, as Kubernetes writes it.
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecretRef {
    pub name: String,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(super) struct RawParameter {
    pub default: Option<String>,
    pub required: bool,
    pub annotation: Option<String>,
    pub label: Option<String>,
    pub pattern: Option<String>,
    #[serde(rename = "enum")]
    pub allowed: Option<Vec<String>>,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(super) struct RawCopyEnv {
    pub names: Vec<String>,
    pub from: Option<String>,
    pub containers: Vec<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(super) struct RawShareVolumeMounts {
    pub read_only: bool,
    pub containers: Vec<String>,
}

impl Default for RawShareVolumeMounts {
    fn default() -> Self {
        RawShareVolumeMounts { read_only: true, containers: Vec::new() }
    }
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(super) struct RawAppContainers {
    pub env: Vec<EnvVar>,
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(super) struct RawSkip {
    pub namespaces: Vec<String>,
    pub host_network: bool,
}

impl Default for RawSkip {
    fn default() -> Self {
        let system = ["kube-system", "kube-public", "kube-node-lease"];
        RawSkip { namespaces: system.map(String::from).to_vec(), host_network: true }
    }
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
