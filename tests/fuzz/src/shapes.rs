//! Pods and configurations built from the fuzzer's bytes, with the names that matter (the inject
//! and status annotations, the sidecar's own name, shared volume names) drawn often, so that the
//! fuzzer spends its time on injection decisions rather than on JSON syntax.

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};
use sidecar_injector::Config;

/// A map key: usually one the injector reads or writes, sometimes anything.
#[derive(Arbitrary, Debug)]
pub enum Key {
    Inject,
    Status,
    Foo,
    App,
    Slashed,
    Other(String),
}

impl Key {
    fn text(&self) -> String {
        match self {
            Key::Inject => "sidecar-injector.io/inject".into(),
            Key::Status => "sidecar-injector.io/status".into(),
            Key::Foo => "foo".into(),
            Key::App => "app.kubernetes.io/name".into(),
            Key::Slashed => "a~b/c".into(),
            Key::Other(s) => s.clone(),
        }
    }
}

/// A value: the ones the inject annotation understands, or anything.
#[derive(Arbitrary, Debug)]
pub enum Text {
    True,
    False,
    Profile(Name),
    Two(Name, Name),
    Other(String),
}

impl Text {
    fn text(&self) -> String {
        match self {
            Text::True => "true".into(),
            Text::False => "false".into(),
            Text::Profile(n) => n.text(),
            Text::Two(a, b) => format!("{},{}", a.text(), b.text()),
            Text::Other(s) => s.clone(),
        }
    }
}

/// Names of containers, volumes and profiles, from a small pool so that they collide.
#[derive(Arbitrary, Debug)]
pub enum Name {
    Example,
    Sidecar,
    App,
    Config,
    Other(String),
}

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Example => "example".into(),
            Name::Sidecar => "example-sidecar".into(),
            Name::App => "app".into(),
            Name::Config => "config".into(),
            Name::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct Container {
    name: Name,
    image: String,
    env: Option<Vec<(Name, String)>>,
    mounts: Option<Vec<(Name, Name)>>,
}

impl Container {
    fn json(&self) -> Value {
        let mut c = json!({"name": self.name.text(), "image": self.image});
        if let Some(env) = &self.env {
            c["env"] = env.iter().map(|(n, v)| json!({"name": n.text(), "value": v})).collect();
        }
        if let Some(mounts) = &self.mounts {
            c["volumeMounts"] = mounts
                .iter()
                .map(|(n, p)| json!({"name": n.text(), "mountPath": format!("/{}", p.text())}))
                .collect();
        }
        c
    }
}

fn map(pairs: &[(Key, Text)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.text(), Value::String(v.text()))).collect())
}

fn volumes(names: &[Name]) -> Value {
    names.iter().map(|n| json!({"name": n.text(), "emptyDir": {}})).collect()
}

#[derive(Arbitrary, Debug)]
pub struct Pod {
    name: Option<String>,
    labels: Option<Vec<(Key, Text)>>,
    annotations: Option<Vec<(Key, Text)>>,
    containers: Vec<Container>,
    init_containers: Option<Vec<Container>>,
    volumes: Option<Vec<Name>>,
    host_network: Option<bool>,
    /// A field this injector knows nothing about, which must survive.
    unknown: Option<(String, String)>,
}

impl Pod {
    fn json(&self) -> Value {
        let mut metadata = Map::new();
        if let Some(name) = &self.name {
            metadata.insert("name".into(), name.clone().into());
        }
        if let Some(labels) = &self.labels {
            metadata.insert("labels".into(), map(labels));
        }
        if let Some(annotations) = &self.annotations {
            metadata.insert("annotations".into(), map(annotations));
        }
        let mut spec = json!({"containers": self.containers.iter().map(Container::json).collect::<Value>()});
        if let Some(init) = &self.init_containers {
            spec["initContainers"] = init.iter().map(Container::json).collect();
        }
        if let Some(names) = &self.volumes {
            spec["volumes"] = volumes(names);
        }
        if let Some(host) = self.host_network {
            spec["hostNetwork"] = host.into();
        }
        if let Some((key, value)) = &self.unknown {
            spec[key] = value.clone().into();
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
    }
}

#[derive(Arbitrary, Debug)]
pub struct Profile {
    containers: Vec<Container>,
    init_containers: Vec<Container>,
    sidecars: Vec<Container>,
    volumes: Vec<Name>,
    app_env: Vec<(Name, String)>,
    app_mounts: Vec<(Name, Name)>,
    labels: Vec<(Key, Text)>,
    annotations: Vec<(Key, Text)>,
    deny: bool,
    /// Last, so that the corpus made before it decodes to the same profiles.
    selection: Option<Selection>,
}

/// Where a profile applies by itself: label selectors drawn from the keys Pods carry, and
/// operators valid or not (an invalid one must be refused at load, never panic).
#[derive(Arbitrary, Debug)]
pub struct Selection {
    match_labels: Option<Vec<(Key, Text)>>,
    expressions: Option<Vec<Requirement>>,
    namespaces: Vec<Name>,
}

/// A `matchExpressions` entry: a key, an operator, and values or none.
type Requirement = (Key, Operator, Option<Vec<Text>>);

#[derive(Arbitrary, Debug)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Other(String),
}

impl Selection {
    fn json(&self) -> (Value, Value) {
        let mut selector = Map::new();
        if let Some(labels) = &self.match_labels {
            selector.insert("matchLabels".into(), map(labels));
        }
        if let Some(expressions) = &self.expressions {
            let expressions = expressions.iter().map(|(key, operator, values)| {
                let operator = match operator {
                    Operator::In => "In".to_owned(),
                    Operator::NotIn => "NotIn".to_owned(),
                    Operator::Exists => "Exists".to_owned(),
                    Operator::DoesNotExist => "DoesNotExist".to_owned(),
                    Operator::Other(other) => other.clone(),
                };
                let mut requirement = json!({"key": key.text(), "operator": operator});
                if let Some(values) = values {
                    requirement["values"] = values.iter().map(Text::text).collect();
                }
                requirement
            });
            selector.insert("matchExpressions".into(), expressions.collect());
        }
        (Value::Object(selector), self.namespaces.iter().map(Name::text).collect())
    }
}

#[derive(Arbitrary, Debug)]
pub struct Configuration {
    labels: Vec<(Key, Text)>,
    annotations: Vec<(Key, Text)>,
    inject_by_default: bool,
    default_profiles: Vec<Name>,
    deny: bool,
    profiles: Vec<(Name, Profile)>,
    skip_namespaces: Vec<Name>,
    skip_host_network: bool,
}

fn on_error(deny: bool) -> &'static str {
    if deny { "deny" } else { "allow" }
}

impl Configuration {
    fn json(&self) -> Value {
        let profiles: Map<String, Value> = self
            .profiles
            .iter()
            .map(|(name, p)| {
                let profile = json!({
                    "containers": p.containers.iter().map(Container::json).collect::<Value>(),
                    "initContainers": p.init_containers.iter().map(Container::json).collect::<Value>(),
                    "sidecars": p.sidecars.iter().map(Container::json).collect::<Value>(),
                    "volumes": volumes(&p.volumes),
                    "appContainers": {
                        "env": p.app_env.iter().map(|(n, v)| json!({"name": n.text(), "value": v})).collect::<Value>(),
                        "volumeMounts": p.app_mounts.iter()
                            .map(|(n, path)| json!({"name": n.text(), "mountPath": format!("/{}", path.text())}))
                            .collect::<Value>(),
                    },
                    "labels": map(&p.labels),
                    "annotations": map(&p.annotations),
                    "onError": on_error(p.deny),
                });
                let mut profile = profile;
                if let Some(selection) = &p.selection {
                    let (selector, namespaces) = selection.json();
                    profile["selector"] = selector;
                    profile["namespaces"] = namespaces;
                }
                (name.text(), profile)
            })
            .collect();
        json!({
            "labels": map(&self.labels),
            "annotations": map(&self.annotations),
            "injectByDefault": self.inject_by_default,
            "defaultProfiles": self.default_profiles.iter().map(Name::text).collect::<Vec<_>>(),
            "onError": on_error(self.deny),
            "profiles": profiles,
            "skip": {
                "namespaces": self.skip_namespaces.iter().map(Name::text).collect::<Vec<_>>(),
                "hostNetwork": self.skip_host_network,
            },
        })
    }
}

#[derive(Arbitrary, Debug)]
pub struct Case {
    pod: Pod,
    config: Option<Configuration>,
    namespace: Name,
    update: bool,
    dry_run: bool,
}

impl Case {
    /// The configuration (the built-in one when the case has none) and the review's bytes; `None`
    /// when the generated configuration is invalid (after checking that its error has a message).
    pub fn review(&self) -> Option<(Config, Vec<u8>)> {
        let config = match &self.config {
            None => Config::builtin(),
            Some(shape) => match Config::from_value(shape.json()) {
                Ok(config) => config,
                Err(error) => {
                    assert!(!error.to_string().is_empty());
                    return None;
                }
            },
        };
        let pod = self.pod.json();
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "0f0e0d0c-0000-4000-8000-000000000001",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": self.namespace.text(),
                "operation": if self.update { "UPDATE" } else { "CREATE" },
                "userInfo": {"username": "fuzz"},
                "object": pod,
                "oldObject": if self.update { pod.clone() } else { Value::Null },
                "dryRun": self.dry_run,
            }
        });
        Some((config, serde_json::to_vec(&review).expect("serialisable")))
    }
}
