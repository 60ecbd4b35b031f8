//! What a profile adds, judged against the level the Pod came in at: the restricted settings filled
//! where a template leaves them unset, what would still lower the Pod, and, at load, the highest
//! level a profile can keep.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::{Context, Findings, Level, annotation_findings, container_findings, volume_findings};
use crate::config::Profile;
use crate::resolve::Resolved;
use crate::skeleton::{SecurityContext, container_of, volume_of};
use crate::template::Rendered;

/// For a Pod that came in restricted, when the profile has `restrictedDefaults`: fill, in each
/// container it adds, the restricted settings its template leaves unset and the Pod does not give
/// it: `allowPrivilegeEscalation: false`, `capabilities.drop: [ALL]`, `runAsNonRoot: true`,
/// `seccompProfile: RuntimeDefault`. An explicit value is never changed. What was filled is part
/// of what was added, so it joins the profile's values, which the status hash covers.
pub(crate) fn fill_restricted(profile: &mut Resolved, context: &Context, before: Level) {
    // Windows Pods may not set these, and restricted does not ask them to.
    if before != Level::Restricted || !profile.profile.restricted_defaults || context.windows {
        return;
    }
    let mut filled = Vec::new();
    for container in profile.init_containers.iter_mut().chain(&mut profile.containers) {
        let fields = fill(container, context);
        if !fields.is_empty() {
            filled.push(format!("{}={}", name(container), fields.join(",")));
        }
    }
    if !filled.is_empty() {
        profile.values.push(format!("restrictedDefaults:{}", filled.join(";")));
    }
}

/// Fill one container; the paths filled, under `securityContext`.
fn fill(container: &mut Rendered, context: &Context) -> Vec<&'static str> {
    let sc = container.get("securityContext");
    let unset = |field: &str| sc.and_then(|sc| sc.get(field)).is_none_or(Value::is_null);
    let drop_unset =
        sc.and_then(|sc| sc.get("capabilities")).and_then(|c| c.get("drop")).is_none_or(Value::is_null);
    let mut wanted: Vec<(&'static str, Value)> = Vec::new();
    if unset("allowPrivilegeEscalation") {
        wanted.push(("allowPrivilegeEscalation", json!(false)));
    }
    if drop_unset {
        wanted.push(("capabilities.drop", json!(["ALL"])));
    }
    if unset("runAsNonRoot") && !context.pod_non_root() && !context.user_namespace {
        wanted.push(("runAsNonRoot", json!(true)));
    }
    if unset("seccompProfile") && !context.pod_seccomp_set() {
        wanted.push(("seccompProfile", json!({"type": "RuntimeDefault"})));
    }
    if wanted.is_empty() {
        return Vec::new();
    }
    let sc = container.to_mut().as_object_mut().expect("container templates are objects");
    let sc = object_at(sc, "securityContext");
    let mut paths = Vec::with_capacity(wanted.len());
    for (path, value) in wanted {
        match path.split_once('.') {
            Some((parent, field)) => object_at(sc, parent).insert(field.into(), value),
            None => sc.insert(path.into(), value),
        };
        paths.push(path);
    }
    paths
}

/// The object under `key`, made one when it is absent or `null`.
fn object_at<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let value = map.entry(key).or_insert(Value::Null);
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    value.as_object_mut().expect("made an object above")
}

fn name(container: &Value) -> &str {
    container.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// Some of what a profile adds would lower the Pod: to which level, and what, one message each.
#[derive(Debug)]
pub(crate) struct Lowered {
    pub to: Level,
    pub messages: Vec<String>,
}

/// What in `profile`'s additions the Pod, at `before`, would be lowered by; `None` when nothing.
pub(crate) fn lowered(profile: &Resolved, context: &Context, before: Level) -> Option<Lowered> {
    if before == Level::Privileged {
        return None;
    }
    let judged = Judged::of(profile, context);
    let failing = judged.failing(before);
    if failing.is_empty() {
        return None;
    }
    let to = if before == Level::Restricted && judged.failing(Level::Baseline).is_empty() {
        Level::Baseline
    } else {
        Level::Privileged
    };
    let messages = failing
        .into_iter()
        .map(|(item, found)| {
            format!("{item} would lower the Pod from {before} to {to}: {}", found.join(", "))
        })
        .collect();
    Some(Lowered { to, messages })
}

/// The highest level `profile`'s additions can keep, in the Pod most favourable to them (one that
/// sets `runAsNonRoot` and a seccomp profile for its containers), with what stops it going higher.
pub(crate) fn profile_level(profile: &Profile) -> (Level, Vec<String>) {
    let favourable = SecurityContext {
        run_as_non_root: Some(true),
        seccomp: Some(Cow::Borrowed("RuntimeDefault")),
        ..SecurityContext::default()
    };
    let context = Context { pod: Some(&favourable), ..Context::default() };
    let mut resolved = Resolved::unfilled(profile);
    fill_restricted(&mut resolved, &context, Level::Restricted);
    let judged = Judged::of(&resolved, &context);
    let describe = |failing: Vec<(String, Findings)>| {
        failing.into_iter().map(|(item, found)| format!("{item} {}", found.join(", "))).collect()
    };
    let restricted = judged.failing(Level::Restricted);
    if restricted.is_empty() {
        return (Level::Restricted, Vec::new());
    }
    let baseline = judged.failing(Level::Baseline);
    if baseline.is_empty() {
        (Level::Baseline, describe(restricted))
    } else {
        (Level::Privileged, describe(baseline))
    }
}

/// A profile's additions, ready to be judged at a level.
struct Judged<'a> {
    profile: &'a Resolved<'a>,
    context: &'a Context<'a>,
}

impl<'a> Judged<'a> {
    fn of(profile: &'a Resolved<'a>, context: &'a Context<'a>) -> Self {
        Judged { profile, context }
    }

    /// Each addition that fails `at`, named ("sidecar \"x\""), with what it fails.
    fn failing(&self, at: Level) -> Vec<(String, Findings)> {
        let mut failing = Vec::new();
        let p = self.profile;
        for (container, kind) in p
            .init_containers
            .iter()
            .map(|c| (c, init_kind(c)))
            .chain(p.containers.iter().map(|c| (c, "container")))
        {
            let mut found = Findings::new();
            container_findings(&container_of(container), self.context, at, &mut found);
            if !found.is_empty() {
                failing.push((format!("{kind} {:?}", name(container)), found));
            }
        }
        for volume in &p.volumes {
            let mut found = Findings::new();
            volume_findings(&volume_of(volume), at, &mut found);
            if !found.is_empty() {
                failing.push((format!("volume {:?}", name(volume)), found));
            }
        }
        for (key, value) in &p.annotations {
            let mut found = Findings::new();
            annotation_findings(key, value, &mut found);
            if !found.is_empty() {
                failing.push((format!("annotation {key:?}"), found));
            }
        }
        failing
    }
}

fn init_kind(container: &Value) -> &'static str {
    match container.get("restartPolicy").and_then(Value::as_str) {
        Some("Always") => "sidecar",
        _ => "init container",
    }
}
