//! A profile made concrete for one Pod: placeholders filled with the Pod's values, each value
//! checked against its parameter's rule and, once in place, against the Kubernetes field it lands
//! in; env vars copied from the app container; the app's mounts shared. A profile that reads
//! nothing from the Pod is borrowed as it is, with no copy.
//!
//! Any problem is reported whole, for the profile's `onError`: a Pod is injected with every value
//! in place and valid, or not at all.

use std::borrow::Cow;

use serde_json::Value;

use super::config::{CopyEnv, Parameter, Profile, ShareVolumeMounts};
use super::fields::{self, Kind};
use super::names::{mount_path, name_of};
use super::pod_view::PodView;
use super::template::{Rendered, Source, Template, as_text};

/// Where an app container's service-account token is mounted; never shared into our containers.
const TOKEN_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// One profile, resolved for one Pod.
#[derive(Debug)]
pub(crate) struct Resolved<'c> {
    pub profile: &'c Profile,
    pub init_containers: Vec<Rendered<'c>>,
    pub containers: Vec<Rendered<'c>>,
    pub volumes: Vec<Rendered<'c>>,
    pub app_env: Vec<Rendered<'c>>,
    pub app_volume_mounts: Vec<Rendered<'c>>,
    pub labels: Vec<(&'c str, Cow<'c, str>)>,
    pub annotations: Vec<(&'c str, Cow<'c, str>)>,
    /// The parameters' values, then the built-ins the profile reads: part of the status hash.
    pub values: Vec<String>,
}

/// Where a parameter's value came from, for messages.
enum Origin<'a> {
    Annotation(&'a str),
    Label(&'a str),
    Default,
}

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Annotation(key) => write!(f, "annotation {key}"),
            Origin::Label(key) => write!(f, "label {key}"),
            Origin::Default => f.write_str("its default"),
        }
    }
}

/// Resolve `profile` for the Pod in `view`, created in `namespace`; `app` holds the app
/// containers' env vars and mounts (see `skeleton::app_values`) when any profile reads them.
/// `Err` lists every problem.
pub(crate) fn resolve<'c>(
    profile: &'c Profile,
    view: &PodView,
    app: &[Value],
    namespace: &str,
    warnings: &mut Vec<String>,
) -> Result<Resolved<'c>, Vec<String>> {
    let p = &profile.name;
    let mut filler = Filler {
        profile,
        values: Vec::with_capacity(profile.parameters.len() + profile.built_ins.len()),
        origins: Vec::with_capacity(profile.parameters.len()),
        namespace,
        service_account: view.service_account.unwrap_or("default"),
        app_container: view.containers.first().map_or("", |c| &c.name),
        problems: Vec::new(),
    };
    for parameter in &profile.parameters {
        match value_of(parameter, view) {
            Ok((value, origin)) => {
                filler.values.push(value.to_owned());
                filler.origins.push(origin);
            }
            Err(why) => filler.problems.push(format!("profile {p:?}: {why}")),
        }
    }
    if !filler.problems.is_empty() {
        return Err(filler.problems);
    }
    let built_ins: Vec<String> = profile.built_ins.iter().map(|s| filler.fill(*s).to_owned()).collect();
    filler.values.extend(built_ins);

    let kind = |c: &Value| match c.get("restartPolicy").and_then(Value::as_str) {
        Some("Always") => Kind::Running,
        _ => Kind::Init,
    };
    let mut init_containers = filler.templates(&profile.init_containers, &|c| fields::container(c, kind(c)));
    let mut containers = filler.templates(&profile.containers, &|c| fields::container(c, Kind::Running));
    let volumes = filler.templates(&profile.volumes, &fields::volume);
    let app_env = filler.templates(&profile.app_env, &fields::env_var);
    let app_volume_mounts = filler.templates(&profile.app_volume_mounts, &fields::volume_mount);
    let labels = filler.text(&profile.labels, true);
    let annotations = filler.text(&profile.annotations, false);
    let mut targets: Vec<&mut Rendered> = init_containers.iter_mut().chain(containers.iter_mut()).collect();
    if let Err(why) = add_app_values(profile, view, app, &mut targets, warnings) {
        filler.problems.push(why);
    }
    if !filler.problems.is_empty() {
        return Err(filler.problems);
    }
    let values = filler.values;
    Ok(Resolved {
        profile,
        init_containers,
        containers,
        volumes,
        app_env,
        app_volume_mounts,
        labels,
        annotations,
        values,
    })
}

/// The values of one profile for one Pod, and the problems found filling its templates with them.
struct Filler<'a> {
    profile: &'a Profile,
    /// The parameters' values in order, then the built-ins the profile reads.
    values: Vec<String>,
    origins: Vec<Origin<'a>>,
    namespace: &'a str,
    service_account: &'a str,
    app_container: &'a str,
    problems: Vec<String>,
}

impl<'a> Filler<'a> {
    fn fill(&self, source: Source) -> &str {
        match source {
            Source::Parameter(i) => &self.values[i],
            Source::Namespace => self.namespace,
            Source::ServiceAccountName => self.service_account,
            Source::AppContainer => self.app_container,
        }
    }

    /// Each template filled; one with placeholders is checked again, as its values are new.
    fn templates<'c>(
        &mut self,
        templates: &'c [Template],
        check: &dyn Fn(&Value) -> Result<(), fields::Found>,
    ) -> Vec<Rendered<'c>> {
        let mut out = Vec::with_capacity(templates.len());
        for template in templates {
            let rendered = template.render(&|s| self.fill(s));
            if template.has_holes()
                && let Err((at, why)) = check(&rendered)
            {
                let told = self.told(&template.sources_at(&at));
                let problem =
                    format!("profile {:?}: {}{at}: {why}{told}", self.profile.name, describe(template));
                self.problems.push(problem);
            }
            out.push(rendered);
        }
        out
    }

    fn text<'c>(
        &mut self,
        pairs: &'c [(String, Template)],
        are_labels: bool,
    ) -> Vec<(&'c str, Cow<'c, str>)> {
        let mut out = Vec::with_capacity(pairs.len());
        for (key, template) in pairs {
            let value = as_text(template.render(&|s| self.fill(s)));
            if are_labels
                && template.has_holes()
                && let Err(why) = fields::label_value(&value)
            {
                let told = self.told(&template.sources_at(""));
                let problem = format!("profile {:?}: label {key}: {why}{told}", self.profile.name);
                self.problems.push(problem);
            }
            out.push((key.as_str(), value));
        }
        out
    }

    /// For a message about a field: where the parameters' values it reads came from.
    fn told(&self, sources: &[Source]) -> String {
        let said: Vec<String> = sources
            .iter()
            .filter_map(|s| match *s {
                Source::Parameter(i) => {
                    Some(format!("{} from {}", self.profile.parameters[i].name, self.origins[i]))
                }
                _ => None,
            })
            .collect();
        if said.is_empty() { String::new() } else { format!(" ({})", said.join(", ")) }
    }
}

/// The value a Pod gives a parameter (annotation first, then label), or its default; checked
/// against the parameter's rule.
fn value_of<'a>(parameter: &'a Parameter, view: &PodView<'a>) -> Result<(&'a str, Origin<'a>), String> {
    let name = &parameter.name;
    let given = [
        parameter.annotation.as_deref().and_then(|k| Some((view.annotation(k)?, Origin::Annotation(k)))),
        parameter.label.as_deref().and_then(|k| Some((view.label(k)?, Origin::Label(k)))),
    ];
    let Some((value, origin)) = given.into_iter().flatten().next() else {
        return match &parameter.default {
            Some(default) => Ok((default, Origin::Default)),
            None => {
                let by = [("annotation", &parameter.annotation), ("label", &parameter.label)];
                let by: Vec<String> =
                    by.iter().filter_map(|(w, k)| Some(format!("{w} {}", k.as_deref()?))).collect();
                Err(format!("parameter {name} is required: set {}", by.join(" or ")))
            }
        };
    };
    match parameter.rule.check(value) {
        Ok(()) => Ok((value, origin)),
        Err(why) => {
            let shown: String = value.chars().take(100).collect();
            Err(format!("{origin} = {shown:?} {why} (parameter {name})"))
        }
    }
}

/// How a message names a template: by the name it has (names take no placeholders).
fn describe(template: &Template) -> String {
    let value = template.value();
    let name = name_of(value);
    let kind = if value.get("image").is_some() {
        "container"
    } else if value.get("mountPath").is_some() {
        "app mount of volume"
    } else if value.get("value").is_some() || value.get("valueFrom").is_some() {
        "app env var"
    } else {
        "volume"
    };
    format!("{kind} {name:?}")
}

/// `copyEnv` and `shareVolumeMounts` into the profile's filled containers, `targets`.
fn add_app_values(
    profile: &Profile,
    view: &PodView,
    app: &[Value],
    targets: &mut [&mut Rendered],
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let p = &profile.name;
    if let Some(copy) = &profile.copy_env {
        let Some(source) = source_container(copy, view) else {
            let from = copy.from.as_deref().unwrap_or("(the first container)");
            return Err(format!(
                "profile {p:?} copies env from container {from:?}, which the Pod does not have"
            ));
        };
        let (copied, missing) = env_to_copy(copy, app.get(source).unwrap_or(&Value::Null));
        copy_env(copy, &copied, targets);
        let from = &view.containers[source].name;
        warnings.extend(missing.into_iter().map(|name| {
            format!("sidecar-injector: profile {p:?} copies env var {name} from container {from:?}, which does not set it")
        }));
    }
    if let Some(share) = &profile.share_volume_mounts {
        share_mounts(share, app, targets);
    }
    Ok(())
}

/// The index of the app container `copyEnv` copies from.
fn source_container(copy: &CopyEnv, view: &PodView) -> Option<usize> {
    match &copy.from {
        Some(name) => view.containers.iter().position(|c| c.name == name.as_str()),
        None => (!view.containers.is_empty()).then_some(0),
    }
}

/// The env vars `copyEnv` names, as `source` (an app container's values) sets them, and the names
/// it does not set.
fn env_to_copy<'a>(copy: &'a CopyEnv, source: &'a Value) -> (Vec<&'a Value>, Vec<&'a str>) {
    let env = source.get("env").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let mut copied = Vec::new();
    let mut missing = Vec::new();
    for name in &copy.names {
        match env.iter().find(|var| name_of(var) == name) {
            Some(var) => copied.push(var),
            None => missing.push(name.as_str()),
        }
    }
    (copied, missing)
}

/// Put the copies at the front of each target's env, so that the target's own env can refer to
/// them with `$(NAME)`.
fn copy_env(copy: &CopyEnv, copied: &[&Value], targets: &mut [&mut Rendered]) {
    if copied.is_empty() {
        return;
    }
    for target in targets.iter_mut().filter(|t| copy.containers.includes(name_of(t))) {
        let env = list_in(target.to_mut(), "env");
        env.splice(0..0, copied.iter().map(|v| (*v).clone()));
    }
}

/// Mount each app container's volumes in each target at the same path (read-only unless the
/// profile says otherwise); a path the target mounts already keeps its own mount.
fn share_mounts(share: &ShareVolumeMounts, app: &[Value], targets: &mut [&mut Rendered]) {
    let mounts = app.iter().filter_map(|c| c.get("volumeMounts").and_then(Value::as_array)).flatten();
    let shared: Vec<&Value> = mounts.filter(|m| mount_path(m) != TOKEN_MOUNT).collect();
    if shared.is_empty() {
        return;
    }
    for target in targets.iter_mut().filter(|t| share.containers.includes(name_of(t))) {
        let mounts = list_in(target.to_mut(), "volumeMounts");
        for mount in &shared {
            if mounts.iter().any(|m| mount_path(m) == mount_path(mount)) {
                continue;
            }
            let mut mount = (*mount).clone();
            if share.read_only
                && let Some(fields) = mount.as_object_mut()
            {
                fields.insert("readOnly".into(), Value::Bool(true));
            }
            mounts.push(mount);
        }
    }
}

/// A container template's list at `field`, made when absent or `null` (the typed round trip at load
/// checked that it is a list otherwise).
fn list_in<'v>(container: &'v mut Value, field: &str) -> &'v mut Vec<Value> {
    let container = container.as_object_mut().expect("a container template is an object");
    let slot = container.entry(field).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut().expect("checked to be a list")
}
