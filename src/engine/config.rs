//! The injection configuration: what to add to a Pod, and which Pods to leave alone.
//!
//! A configuration is loaded once (at start, or on reload) and validated completely then, so that a
//! request never meets a surprise. Every error names the path of the bad field, in the form a user
//! can find in their file: `profiles.proxy.containers[0].imagePullPolicyy: unknown field`.
//!
//! ```
//! use sidecar_injector::Config;
//!
//! let config = Config::from_yaml("labels: {team: payments}\ndefaultProfiles: []\n").unwrap();
//! assert!(config.profile_names().next().is_none());
//!
//! let err = Config::from_yaml("profiles: {p: {containers: [{name: a, image: b, imagePullPolicyy: Always}]}}")
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "profiles.p.containers[0].imagePullPolicyy: unknown field");
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Volume, VolumeMount};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::names;

/// The configuration compiled into the binary, used when no file is given.
pub const BUILTIN_YAML: &str = include_str!("default-config.yaml");

/// The annotations and label this injector reads and writes on Pods.
pub mod keys {
    /// `"false"` opts a Pod out, `"true"` asks for the default profiles, `"a,b"` names profiles.
    /// Read from the annotations, and from the labels for the opt-out (so an objectSelector can
    /// keep opted-out Pods from ever reaching the webhook).
    pub const INJECT: &str = "sidecar-injector.io/inject";
    /// Written on every injected Pod: which profiles, and a hash of what they added.
    pub const STATUS: &str = "sidecar-injector.io/status";
}

/// What to do when a profile cannot be applied to a Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OnError {
    /// Refuse the Pod, with a message naming the cause.
    #[default]
    Deny,
    /// Admit the Pod unchanged, with a warning.
    Allow,
}

/// A validated configuration, ready to serve requests.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) inject_by_default: bool,
    pub(crate) default_profiles: Vec<String>,
    pub(crate) on_error: OnError,
    pub(crate) profiles: BTreeMap<String, Profile>,
    pub(crate) skip_namespaces: Vec<String>,
    pub(crate) skip_host_network: bool,
    /// Hash of the Pod-wide labels and annotations, part of every status annotation.
    pub(crate) digest: String,
}

/// One named set of things to add to a Pod. Templates are kept as JSON, exactly as they will be
/// inserted, after a round trip through the Kubernetes types has proved every field real.
#[derive(Debug, Clone)]
pub struct Profile {
    pub(crate) name: String,
    pub(crate) containers: Vec<Value>,
    /// Plain init containers first, then the native sidecars, in the order they will run.
    pub(crate) init_containers: Vec<Value>,
    pub(crate) volumes: Vec<Value>,
    pub(crate) app_env: Vec<Value>,
    pub(crate) app_volume_mounts: Vec<Value>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) on_error: OnError,
    /// Hash of everything this profile adds; changes whenever its content does.
    pub(crate) digest: String,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is neither YAML nor JSON.
    #[error("configuration is not valid YAML or JSON: {0}")]
    Syntax(String),
    /// A field is wrong; `path` says which, as in `profiles.proxy.containers[0].image`.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl ConfigError {
    fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { path: path.into(), message: message.into() }
    }
}

// The file's shape. Our own structs deny unknown fields; the Kubernetes types ignore them, which is
// why `unknown_fields` below compares the input with its round trip.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default = "yes")]
    inject_by_default: bool,
    #[serde(default)]
    default_profiles: Vec<String>,
    #[serde(default)]
    on_error: OnError,
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
    #[serde(default)]
    skip: RawSkip,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    containers: Vec<Container>,
    #[serde(default)]
    init_containers: Vec<Container>,
    #[serde(default)]
    sidecars: Vec<Container>,
    #[serde(default)]
    volumes: Vec<Volume>,
    #[serde(default)]
    app_containers: RawAppContainers,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    on_error: OnError,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAppContainers {
    #[serde(default)]
    env: Vec<EnvVar>,
    #[serde(default)]
    volume_mounts: Vec<VolumeMount>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSkip {
    #[serde(default = "system_namespaces")]
    namespaces: Vec<String>,
    #[serde(default = "yes")]
    host_network: bool,
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

impl Config {
    /// The built-in configuration: the `foo=bar` label and one example sidecar.
    pub fn builtin() -> Config {
        Config::from_yaml(BUILTIN_YAML).expect("the built-in configuration is valid (tested)")
    }

    /// Load a configuration from YAML or JSON text (JSON is YAML).
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let value: Value = serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        Config::from_value(value)
    }

    /// Load a configuration from bytes, which must be UTF-8 YAML or JSON.
    pub fn from_slice(bytes: &[u8]) -> Result<Config, ConfigError> {
        let text =
            std::str::from_utf8(bytes).map_err(|e| ConfigError::Syntax(format!("not UTF-8 text: {e}")))?;
        Config::from_yaml(text)
    }

    /// Load a configuration from an already parsed JSON value.
    pub fn from_value(value: Value) -> Result<Config, ConfigError> {
        // An empty file is an empty configuration, which means all defaults.
        let value = if value.is_null() { Value::Object(Default::default()) } else { value };
        if !value.is_object() {
            return Err(ConfigError::at(
                "(top level)",
                "a configuration is a map of fields such as `profiles:`",
            ));
        }
        let raw: RawConfig = serde_path_to_error::deserialize(&value)
            .map_err(|e| ConfigError::at(e.path().to_string(), e.into_inner().to_string()))?;
        let round_trip = serde_json::to_value(&raw).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        if let Some(path) = first_unknown_field(&value, &round_trip, String::new()) {
            return Err(ConfigError::at(path, "unknown field"));
        }
        compile(raw)
    }

    /// The names of the profiles, in order.
    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }
}

/// The path of the first key that is in `input` but was dropped by the typed round trip: a field
/// the Kubernetes types do not know, most often a typo. `null` values are dropped legitimately.
fn first_unknown_field(input: &Value, round_trip: &Value, path: String) -> Option<String> {
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

fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    check_string_map(&raw.labels, "labels", true)?;
    check_string_map(&raw.annotations, "annotations", false)?;

    let mut profiles = BTreeMap::new();
    for (name, profile) in raw.profiles {
        let path = format!("profiles.{name}");
        if let Err(why) = names::dns_label(&name) {
            return Err(ConfigError::at(path, format!("profile name {why}")));
        }
        profiles.insert(name.clone(), compile_profile(name, profile, &path)?);
    }
    for (i, name) in raw.default_profiles.iter().enumerate() {
        if !profiles.contains_key(name) {
            return Err(ConfigError::at(
                format!("defaultProfiles[{i}]"),
                format!("no profile named {name:?}"),
            ));
        }
    }
    for (i, namespace) in raw.skip.namespaces.iter().enumerate() {
        if let Err(why) = names::dns_label(namespace) {
            return Err(ConfigError::at(format!("skip.namespaces[{i}]"), format!("namespace name {why}")));
        }
    }

    let digest = digest_of(&(&raw.labels, &raw.annotations));
    Ok(Config {
        labels: raw.labels,
        annotations: raw.annotations,
        inject_by_default: raw.inject_by_default,
        default_profiles: raw.default_profiles,
        on_error: raw.on_error,
        profiles,
        skip_namespaces: raw.skip.namespaces,
        skip_host_network: raw.skip.host_network,
        digest,
    })
}

fn compile_profile(name: String, raw: RawProfile, path: &str) -> Result<Profile, ConfigError> {
    check_string_map(&raw.labels, &format!("{path}.labels"), true)?;
    check_string_map(&raw.annotations, &format!("{path}.annotations"), false)?;

    let mut container_names: Vec<&str> = Vec::new();
    let groups = [
        ("containers", &raw.containers),
        ("initContainers", &raw.init_containers),
        ("sidecars", &raw.sidecars),
    ];
    for (field, list) in groups {
        for (i, container) in list.iter().enumerate() {
            let at = |f: &str| format!("{path}.{field}[{i}]{f}");
            if let Err(why) = names::dns_label(&container.name) {
                return Err(ConfigError::at(at(".name"), format!("container name {why}")));
            }
            if container_names.contains(&container.name.as_str()) {
                return Err(ConfigError::at(
                    at(".name"),
                    format!("{:?} is used twice in this profile", container.name),
                ));
            }
            container_names.push(&container.name);
            if container.image.as_deref().unwrap_or("").is_empty() {
                return Err(ConfigError::at(at(".image"), "an image is required"));
            }
            let restart = container.restart_policy.as_deref();
            match (field, restart) {
                (_, None) | ("sidecars", Some("Always")) => {}
                ("sidecars", Some(other)) => {
                    return Err(ConfigError::at(
                        at(".restartPolicy"),
                        format!("a sidecar runs with Always, not {other:?}; leave it out"),
                    ));
                }
                (_, Some(_)) => {
                    return Err(ConfigError::at(
                        at(".restartPolicy"),
                        "only sidecars take a restartPolicy (Always); leave it out or move the container to sidecars",
                    ));
                }
            }
        }
    }

    let mut volume_names: Vec<&str> = Vec::new();
    for (i, volume) in raw.volumes.iter().enumerate() {
        let at = format!("{path}.volumes[{i}].name");
        if let Err(why) = names::dns_label(&volume.name) {
            return Err(ConfigError::at(at, format!("volume name {why}")));
        }
        if volume_names.contains(&volume.name.as_str()) {
            return Err(ConfigError::at(at, format!("{:?} is used twice in this profile", volume.name)));
        }
        volume_names.push(&volume.name);
    }
    for (i, env) in raw.app_containers.env.iter().enumerate() {
        if env.name.is_empty() {
            return Err(ConfigError::at(format!("{path}.appContainers.env[{i}].name"), "must not be empty"));
        }
    }
    for (i, mount) in raw.app_containers.volume_mounts.iter().enumerate() {
        if mount.name.is_empty() || mount.mount_path.is_empty() {
            return Err(ConfigError::at(
                format!("{path}.appContainers.volumeMounts[{i}]"),
                "name and mountPath must not be empty",
            ));
        }
    }

    let mut sidecars = raw.sidecars;
    for sidecar in &mut sidecars {
        sidecar.restart_policy = Some("Always".into());
    }
    let init_containers = raw.init_containers.iter().chain(&sidecars).map(to_json).collect();
    let mut profile = Profile {
        name,
        containers: raw.containers.iter().map(to_json).collect(),
        init_containers,
        volumes: raw.volumes.iter().map(to_json).collect(),
        app_env: raw.app_containers.env.iter().map(to_json).collect(),
        app_volume_mounts: raw.app_containers.volume_mounts.iter().map(to_json).collect(),
        labels: raw.labels,
        annotations: raw.annotations,
        on_error: raw.on_error,
        digest: String::new(),
    };
    profile.digest = digest_of(&(
        &profile.containers,
        &profile.init_containers,
        &profile.volumes,
        &profile.app_env,
        &profile.app_volume_mounts,
        &profile.labels,
        &profile.annotations,
    ));
    Ok(profile)
}

fn check_string_map(map: &BTreeMap<String, String>, path: &str, are_labels: bool) -> Result<(), ConfigError> {
    for (key, value) in map {
        if let Err(why) = names::qualified_name(key) {
            return Err(ConfigError::at(format!("{path}.{key}"), format!("key {why}")));
        }
        if key == keys::STATUS || key == keys::INJECT {
            return Err(ConfigError::at(
                format!("{path}.{key}"),
                "this key belongs to sidecar-injector itself",
            ));
        }
        if are_labels && let Err(why) = names::label_value(value) {
            return Err(ConfigError::at(format!("{path}.{key}"), format!("label value {why}")));
        }
    }
    Ok(())
}

fn to_json<T: Serialize>(item: &T) -> Value {
    serde_json::to_value(item).expect("Kubernetes types always serialize")
}

/// The first 16 hex digits of the SHA-256 of the canonical JSON: short enough for an annotation,
/// long enough that two different configurations never share one by chance.
fn digest_of<T: Serialize>(item: &T) -> String {
    let bytes = serde_json::to_vec(item).expect("configuration values always serialize");
    hex16(&Sha256::digest(bytes))
}

pub(crate) fn hex16(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().take(8).fold(String::with_capacity(16), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(crate) fn combined_digest(config: &Config, profiles: &[&Profile]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(config.digest.as_bytes());
    for profile in profiles {
        hasher.update(b"\n");
        hasher.update(profile.name.as_bytes());
        hasher.update(b"=");
        hasher.update(profile.digest.as_bytes());
    }
    hex16(&hasher.finalize())
}
