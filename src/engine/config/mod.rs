//! The injection configuration: what to add to a Pod, and which Pods to leave alone.
//!
//! A configuration is loaded once (at start, or on reload) and validated completely then, so that a
//! request never meets a surprise. Every error names the path of the bad field, in the form a user
//! can find in their file: `profiles.proxy.containers[0].imagePullPolicyy: unknown field`.
//!
//! ```
//! use sidecar_injector_engine::Config;
//!
//! let config = Config::from_yaml("labels: {team: payments}\ndefaultProfiles: []\n").unwrap();
//! assert!(config.profile_names().next().is_none());
//!
//! let err = Config::from_yaml("profiles: {p: {containers: [{name: a, image: b, imagePullPolicyy: Always}]}}")
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "profiles.p.containers[0].imagePullPolicyy: unknown field");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

mod compile;
mod params;
mod raw;
mod templates;

use super::error::ConfigError;
use super::selection::Selection;
use super::skeleton::ContainerSkeleton;
use super::template::{Source, Template};

pub(crate) use params::Parameter;

use raw::RawConfig;

/// The configuration compiled into the binary, used when no file is given.
pub const BUILTIN_YAML: &str = include_str!("../default-config.yaml");

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
    /// Whether a profile adds env vars or mounts to the app containers: only then are theirs read.
    pub(crate) adds_to_app_containers: bool,
}

/// One named set of things to add to a Pod. Templates are kept as JSON, exactly as they will be
/// inserted (after a round trip through the Kubernetes types has proved every field real), with
/// their placeholders compiled.
#[derive(Debug, Clone)]
pub struct Profile {
    pub(crate) name: String,
    pub(crate) containers: Vec<Template>,
    /// Plain init containers first, then the native sidecars, in the order they will run.
    pub(crate) init_containers: Vec<Template>,
    pub(crate) volumes: Vec<Template>,
    pub(crate) app_env: Vec<Template>,
    pub(crate) app_volume_mounts: Vec<Template>,
    pub(crate) labels: Vec<(String, Template)>,
    pub(crate) annotations: Vec<(String, Template)>,
    pub(crate) on_error: OnError,
    /// Where it applies by itself; empty when it is only chosen by name or as a default.
    pub(crate) selection: Selection,
    pub(crate) parameters: Vec<Parameter>,
    pub(crate) copy_env: Option<CopyEnv>,
    pub(crate) share_volume_mounts: Option<ShareVolumeMounts>,
    /// Secrets to add to `imagePullSecrets`, each a name the Pod does not list yet.
    pub(crate) image_pull_secrets: Vec<String>,
    /// Fill the restricted settings its containers leave unset, in Pods that come in restricted.
    pub(crate) restricted_defaults: bool,
    /// Its init containers then its containers, as Pod Security reads them: read once here for
    /// every Pod they are added to unchanged.
    pub(crate) containers_read: Vec<ContainerSkeleton<'static>>,
    /// The built-in values its templates read, in `template::BUILT_INS` order.
    pub(crate) built_ins: Vec<Source>,
    /// Hash of everything this profile adds; changes whenever its content does.
    pub(crate) digest: String,
    /// The status annotation of a Pod injected with this profile alone, when it has no values to
    /// fill: the common case, worked out once at load.
    pub(crate) status_alone: Option<String>,
}

/// `copyEnv`: env vars copied by name from an app container into the profile's containers.
#[derive(Debug, Clone)]
pub(crate) struct CopyEnv {
    pub names: Vec<String>,
    /// The app container to copy from; the Pod's first when `None`.
    pub from: Option<String>,
    pub containers: Targets,
}

/// `shareVolumeMounts`: the app containers' mounts, also mounted in the profile's containers.
#[derive(Debug, Clone)]
pub(crate) struct ShareVolumeMounts {
    pub read_only: bool,
    pub containers: Targets,
}

/// The `containers` of `copyEnv` and `shareVolumeMounts`: which of the profile's containers get
/// the app's values; all of them when none are named.
#[derive(Debug, Clone)]
pub(crate) struct Targets(pub Vec<String>);

impl Targets {
    pub fn includes(&self, container: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|name| name == container)
    }
}

impl Config {
    /// The built-in configuration: the `foo=bar` label and one example sidecar.
    pub fn builtin() -> Config {
        Config::from_yaml(BUILTIN_YAML).expect("the built-in configuration is valid (tested)")
    }

    /// For each profile, the highest Pod Security level its additions can keep, and what keeps it
    /// from a higher one, as in `container "tcpdump" adds NET_RAW` (for `config check`).
    pub fn pod_security_levels(&self) -> impl Iterator<Item = (&str, crate::Level, Vec<String>)> {
        self.profiles.values().map(|profile| {
            let (level, why) = crate::pod_security::profile_level(profile);
            (profile.name.as_str(), level, why)
        })
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
        if let Some(path) = raw::first_unknown_field(&value, &round_trip, String::new()) {
            return Err(ConfigError::at(path, "unknown field"));
        }
        compile::compile(raw)
    }

    /// The names of the profiles, in order.
    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// The profiles whose selector, or one of whose parameters, reads the Pod's label `key`.
    pub fn profiles_reading_label<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        let reads = move |p: &&Profile| {
            p.selection.reads_label(key) || p.parameters.iter().any(|q| q.label.as_deref() == Some(key))
        };
        self.profiles.values().filter(reads).map(|p| p.name.as_str())
    }
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

/// The status annotation's value: which profiles, and a hash of the configuration that injected
/// them (`config_digest`, each profile's) and of the values each profile's placeholders were
/// filled with (none for a profile without placeholders, so its hash is what it was before
/// parameters existed). A Pod that already carries exactly this value is left alone.
pub(crate) fn status<'a>(
    config_digest: &str,
    profiles: impl Iterator<Item = (&'a Profile, &'a [String])> + Clone,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(config_digest.as_bytes());
    for (profile, values) in profiles.clone() {
        hasher.update(b"\n");
        hasher.update(profile.name.as_bytes());
        hasher.update(b"=");
        hasher.update(profile.digest.as_bytes());
        for value in values {
            // Length-prefixed, so that ("a,b") and ("a", "b") never hash alike.
            hasher.update(value.len().to_le_bytes());
            hasher.update(value.as_bytes());
        }
    }
    let names: Vec<&str> = profiles.map(|(p, _)| p.name.as_str()).collect();
    serde_json::json!({ "profiles": names, "hash": hex16(&hasher.finalize()) }).to_string()
}
