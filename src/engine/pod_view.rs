//! The few parts of a Pod the decision reads, checked for shape once, so that the decision itself
//! never has to ask whether a field is the type Kubernetes gives it.

use serde_json::{Map, Value};

use super::skeleton::key_of;

/// A field of the Pod that is not the shape Kubernetes gives it. The API server never sends such a
/// Pod; an offline manifest might. We refuse to patch what we cannot read rather than guess.
pub(crate) struct Malformed(pub String);

/// The few parts of a Pod the decision reads, checked for shape once.
pub(crate) struct PodView<'p> {
    labels: Option<&'p Map<String, Value>>,
    annotations: Option<&'p Map<String, Value>>,
    pub host_network: bool,
    pub service_account: Option<&'p str>,
    /// Names of all containers: regular, init and ephemeral, since they share one namespace.
    pub container_names: Vec<&'p str>,
    pub containers: Vec<AppContainer<'p>>,
    pub volume_names: Vec<&'p str>,
}

/// One of the Pod's own (regular) containers, as far as app-container additions need it.
pub(crate) struct AppContainer<'p> {
    pub name: &'p str,
    pub env_names: Vec<&'p str>,
    pub mount_paths: Vec<&'p str>,
}

impl<'p> PodView<'p> {
    pub fn read(pod: &'p Map<String, Value>) -> Result<Self, Malformed> {
        let metadata = optional_object(pod, "metadata", String::new)?;
        let labels = string_map(metadata, "labels")?;
        let annotations = string_map(metadata, "annotations")?;
        let spec =
            optional_object(pod, "spec", String::new)?.ok_or_else(|| Malformed("it has no spec".into()))?;
        let host_network = match spec.get("hostNetwork") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Malformed("spec.hostNetwork is not a boolean".into())),
        };
        let service_account = match spec.get("serviceAccountName") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.as_str()).filter(|n| !n.is_empty()),
            Some(_) => return Err(Malformed("spec.serviceAccountName is not a string".into())),
        };
        let mut container_names = Vec::new();
        let mut containers = Vec::new();
        for (i, container) in optional_array(spec, "containers", || "spec".into())?.iter().enumerate() {
            let container = AppContainer::read(container, || format!("spec.containers[{i}]"))?;
            container_names.push(container.name);
            containers.push(container);
        }
        for field in ["initContainers", "ephemeralContainers"] {
            container_names.extend(keys_of(spec, field, "name", || "spec".into())?);
        }
        let volume_names = keys_of(spec, "volumes", "name", || "spec".to_owned())?;
        Ok(PodView {
            labels,
            annotations,
            host_network,
            service_account,
            container_names,
            containers,
            volume_names,
        })
    }

    pub fn label(&self, key: &str) -> Option<&'p str> {
        self.labels?.get(key)?.as_str()
    }

    pub fn annotation(&self, key: &str) -> Option<&'p str> {
        self.annotations?.get(key)?.as_str()
    }

    /// The labels as a map of strings, for label selectors (read checked them all for strings).
    pub fn label_map(&self) -> std::collections::BTreeMap<String, String> {
        let labels = self.labels.into_iter().flatten();
        labels.filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect()
    }
}

impl<'p> AppContainer<'p> {
    fn read(container: &'p Value, at: impl Fn() -> String) -> Result<Self, Malformed> {
        let Some(container) = container.as_object() else {
            return Err(Malformed(format!("{} is not an object", at())));
        };
        let Some(name) = container.get("name").and_then(Value::as_str) else {
            return Err(Malformed(format!("{}.name is missing or not a string", at())));
        };
        Ok(AppContainer {
            name,
            env_names: keys_of(container, "env", "name", &at)?,
            mount_paths: keys_of(container, "volumeMounts", "mountPath", &at)?,
        })
    }
}

/// `metadata.labels` or `metadata.annotations`: absent, or a map of strings.
fn string_map<'p>(
    metadata: Option<&'p Map<String, Value>>,
    field: &str,
) -> Result<Option<&'p Map<String, Value>>, Malformed> {
    let Some(map) = metadata.map(|m| optional_object(m, field, || "metadata".into())).transpose()?.flatten()
    else {
        return Ok(None);
    };
    match map.iter().find(|(_, v)| !v.is_string()) {
        Some((key, _)) => Err(Malformed(format!("metadata.{field}.{key} is not a string"))),
        None => Ok(Some(map)),
    }
}

/// `null` and absent mean the same in Kubernetes objects (YAML's `labels:` with nothing after it).
/// `at` names the parent, for the error message only.
fn optional_object<'p>(
    parent: &'p Map<String, Value>,
    field: &str,
    at: impl Fn() -> String,
) -> Result<Option<&'p Map<String, Value>>, Malformed> {
    match parent.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Malformed(format!("{} is not an object", path(at(), field)))),
    }
}

fn optional_array<'p>(
    parent: &'p Map<String, Value>,
    field: &str,
    at: impl Fn() -> String,
) -> Result<&'p [Value], Malformed> {
    match parent.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Malformed(format!("{} is not a list", path(at(), field)))),
    }
}

fn path(parent: String, field: &str) -> String {
    if parent.is_empty() { field.to_owned() } else { format!("{parent}.{field}") }
}

/// The names (or mount paths) of a list's items, which the skeleton reduced to strings.
fn keys_of<'p>(
    parent: &'p Map<String, Value>,
    field: &str,
    key: &str,
    at: impl Fn() -> String,
) -> Result<Vec<&'p str>, Malformed> {
    let items = optional_array(parent, field, &at)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| key_of(item).map_err(|why| Malformed(format!("{}.{field}[{i}].{key} {why}", at()))))
        .collect()
}
