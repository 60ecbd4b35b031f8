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
    /// Last, so that the corpus made before it decodes to the same Pods.
    service_account: Option<Name>,
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
        if let Some(account) = &self.service_account {
            spec["serviceAccountName"] = account.text().into();
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
    /// After `selection`, for the same reason.
    values: Option<Values>,
}

/// Declared parameters, placeholders put into the profile's templates, and the values taken
/// from the app container, valid or not (an invalid one must be refused at load, never panic).
#[derive(Arbitrary, Debug)]
pub struct Values {
    parameters: Vec<(ParameterName, Parameter)>,
    uses: Vec<(Placeholder, Place)>,
    copy_env: Option<(Vec<Name>, Option<Name>)>,
    share_volume_mounts: Option<bool>,
}

#[derive(Arbitrary, Debug)]
pub enum ParameterName {
    Path,
    Level,
    Other(String),
}

impl ParameterName {
    fn text(&self) -> String {
        match self {
            ParameterName::Path => "path".into(),
            ParameterName::Level => "level".into(),
            ParameterName::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct Parameter {
    default: Option<Text>,
    required: bool,
    annotation: Option<Key>,
    label: Option<Key>,
    rule: Option<Rule>,
}

#[derive(Arbitrary, Debug)]
pub enum Rule {
    Word,
    Path,
    Pattern(String),
    Enum(Vec<Text>),
}

/// What a template string says: a placeholder, an escape, a mistake, or anything.
#[derive(Arbitrary, Debug)]
pub enum Placeholder {
    Parameter(ParameterName),
    Namespace,
    ServiceAccount,
    AppContainer,
    Escaped(ParameterName),
    Unclosed,
    Other(String),
}

impl Placeholder {
    fn text(&self) -> String {
        match self {
            Placeholder::Parameter(name) => format!("%{{{}}}", name.text()),
            Placeholder::Namespace => "%{pod.namespace}".into(),
            Placeholder::ServiceAccount => "%{pod.serviceAccountName}".into(),
            Placeholder::AppContainer => "%{pod.appContainer}".into(),
            Placeholder::Escaped(name) => format!("%%{{{}}}", name.text()),
            Placeholder::Unclosed => "%{".into(),
            Placeholder::Other(s) => s.clone(),
        }
    }
}

/// Where a placeholder goes: fields that take any text, and fields the API server checks.
#[derive(Arbitrary, Debug)]
pub enum Place {
    Arg,
    EnvValue,
    Label,
    Annotation,
    Memory,
    Image,
    ConfigMapName,
    AppEnv,
}

impl Values {
    fn apply(&self, profile: &mut Value) {
        let parameters: Map<String, Value> =
            self.parameters.iter().map(|(name, p)| (name.text(), p.json())).collect();
        profile["parameters"] = Value::Object(parameters);
        // Placeholders go into the first of the profile's containers, or a new one.
        if profile["sidecars"].as_array().is_none_or(Vec::is_empty) {
            profile["sidecars"] = json!([{"name": "valued", "image": "v"}]);
        }
        for (i, (placeholder, place)) in self.uses.iter().enumerate() {
            let text = Value::String(format!("v{}", placeholder.text()));
            let container = &mut profile["sidecars"][0];
            match place {
                Place::Arg => push(container, "args", text),
                Place::EnvValue => push(container, "env", json!({"name": format!("V{i}"), "value": text})),
                Place::Label => profile["labels"][format!("l{i}")] = text,
                Place::Annotation => profile["annotations"][format!("a{i}")] = text,
                Place::Memory => container["resources"] = json!({"limits": {"memory": text}}),
                Place::Image => container["image"] = text,
                Place::ConfigMapName => push(
                    &mut profile["volumes"],
                    "",
                    json!({"name": format!("c{i}"), "configMap": {"name": text}}),
                ),
                Place::AppEnv => push(
                    &mut profile["appContainers"],
                    "env",
                    json!({"name": format!("A{i}"), "value": text}),
                ),
            }
        }
        if let Some((names, from)) = &self.copy_env {
            let names: Vec<String> = names.iter().map(Name::text).collect();
            profile["copyEnv"] = json!({"names": names});
            if let Some(from) = from {
                profile["copyEnv"]["from"] = from.text().into();
            }
        }
        if let Some(read_only) = self.share_volume_mounts {
            profile["shareVolumeMounts"] = json!({"readOnly": read_only});
        }
    }
}

/// Append `item` to the list at `field` of `parent` (to `parent` itself when `field` is empty).
fn push(parent: &mut Value, field: &str, item: Value) {
    let list = if field.is_empty() { parent } else { &mut parent[field] };
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    list.as_array_mut().expect("made a list").push(item);
}

impl Parameter {
    fn json(&self) -> Value {
        let mut p = json!({"required": self.required});
        if let Some(default) = &self.default {
            p["default"] = default.text().into();
        }
        if let Some(key) = &self.annotation {
            p["annotation"] = key.text().into();
        }
        if let Some(key) = &self.label {
            p["label"] = key.text().into();
        }
        match &self.rule {
            None => {}
            Some(Rule::Word) => p["pattern"] = "[a-z]+".into(),
            Some(Rule::Path) => p["pattern"] = "/[a-z0-9/._-]*".into(),
            Some(Rule::Pattern(pattern)) => p["pattern"] = pattern.clone().into(),
            Some(Rule::Enum(values)) => p["enum"] = values.iter().map(Text::text).collect(),
        }
        p
    }
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
                if let Some(values) = &p.values {
                    values.apply(&mut profile);
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
