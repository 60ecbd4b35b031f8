//! What a profile adds, judged against the level the Pod came in at: the restricted settings filled
//! where a template leaves them unset, what would still lower the Pod, and, at load, the highest
//! level a profile can keep.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::{Context, Findings, Level, annotation_findings, container_findings, volume_findings};
use crate::config::Profile;
use crate::resolve::Resolved;
use crate::skeleton::{
    ContainerSkeleton, NO_SECURITY_CONTEXT, ProfileType, SecurityContext, container_of, volume_of,
};
use crate::template::{Rendered, Template};

/// A restricted setting a template may leave unset, written into the template and into its
/// reading alike.
#[derive(Clone, Copy)]
enum RestrictedDefault {
    NoEscalation,
    DropAll,
    NonRoot,
    Seccomp,
}

impl RestrictedDefault {
    const ALL: [RestrictedDefault; 4] = [Self::NoEscalation, Self::DropAll, Self::NonRoot, Self::Seccomp];

    /// Where it goes, under `securityContext`.
    fn path(self) -> &'static str {
        match self {
            Self::NoEscalation => "allowPrivilegeEscalation",
            Self::DropAll => "capabilities.drop",
            Self::NonRoot => "runAsNonRoot",
            Self::Seccomp => "seccompProfile",
        }
    }

    fn value(self) -> Value {
        match self {
            Self::NoEscalation => json!(false),
            Self::DropAll => json!(["ALL"]),
            Self::NonRoot => json!(true),
            Self::Seccomp => json!({"type": "RuntimeDefault"}),
        }
    }

    /// Whether the container leaves it unset and the Pod does not give it (or does not need to).
    fn wanted(self, sc: &SecurityContext, context: &Context) -> bool {
        match self {
            Self::NoEscalation => sc.allow_privilege_escalation.is_none(),
            Self::DropAll => sc.capabilities.drops_all.is_none(),
            Self::NonRoot => {
                sc.run_as_non_root.is_none() && !context.pod_non_root() && !context.user_namespace
            }
            Self::Seccomp => sc.seccomp.is_none() && !context.pod_seccomp_set(),
        }
    }

    fn read_into(self, sc: &mut SecurityContext) {
        match self {
            Self::NoEscalation => sc.allow_privilege_escalation = Some(false),
            Self::DropAll => sc.capabilities.drops_all = Some(true),
            Self::NonRoot => sc.run_as_non_root = Some(true),
            Self::Seccomp => sc.seccomp = Some(ProfileType::Confined),
        }
    }

    fn write_into(self, sc: &mut Map<String, Value>) {
        match self.path().split_once('.') {
            Some((parent, field)) => object_at(sc, parent).insert(field.into(), self.value()),
            None => sc.insert(self.path().into(), self.value()),
        };
    }
}

/// Some of what a profile adds would lower the Pod: from which level to which, and what does.
#[derive(Debug)]
pub(crate) struct Lowered {
    pub from: Level,
    pub to: Level,
    /// Each addition that would, named (`sidecar "x"`), with the checks it fails.
    items: Vec<(String, Findings)>,
}

impl Lowered {
    /// One message per addition: `sidecar "x" would lower the Pod from restricted to baseline: …`.
    pub fn messages(&self) -> Vec<String> {
        let (from, to) = (self.from, self.to);
        let says = |(item, found): &(String, Findings)| {
            format!("{item} would lower the Pod from {from} to {to}: {}", found.join(", "))
        };
        self.items.iter().map(says).collect()
    }
}

/// What a profile's additions do to a Pod's security, judged once per addition.
#[derive(Debug, Default)]
pub(crate) struct Secured {
    /// What would lower the Pod, if anything.
    pub lowered: Option<Lowered>,
    /// Containers the API server would refuse in this Pod: an unmasked `/proc` outside a user
    /// namespace, at any level. Each a problem of the profile's, as a clash is.
    pub refused: Vec<String>,
}

/// `profile`'s additions for a Pod that came in at `before`. In a restricted Pod, when the profile
/// has `restrictedDefaults` (and the Pod is not a Windows one, which may not set these), each
/// container it adds first gets the restricted settings its template leaves unset and the Pod does
/// not give it; an explicit value is never changed. What was filled is part of what was added, so
/// it joins the profile's values, which the status hash covers. Then: what would still lower the
/// Pod, and what the API server would refuse.
pub(crate) fn secure(profile: &mut Resolved, context: &Context, before: Level) -> Secured {
    let judging = before != Level::Privileged;
    let fill = before == Level::Restricted && profile.profile.restricted_defaults && !context.windows;
    let read: &[ContainerSkeleton] = &profile.profile.containers_read;
    let init = profile.init_containers.len();
    let (mut filled, mut refused) = (Vec::new(), Vec::new());
    let mut lowered = Lowered { from: before, to: before, items: Vec::new() };
    let containers = profile.init_containers.iter_mut().chain(&mut profile.containers);
    for (i, (container, read)) in containers.zip(read).enumerate() {
        // A template added unchanged was read at load; one filled for this Pod is read here.
        let parsed;
        let read = match &*container {
            Rendered::Config { .. } => read,
            Rendered::Filled(value) => {
                parsed = container_of(value);
                &parsed
            }
        };
        let sc = read.security.as_deref().unwrap_or(&NO_SECURITY_CONTEXT);
        if sc.unmasked_proc && !context.user_namespace {
            refused.push(format!(
                "profile {:?}: container {:?} sets procMount other than Default, which the API server allows only with hostUsers: false",
                profile.profile.name,
                name(container)
            ));
        }
        if !judging {
            continue;
        }
        let wanted: Vec<RestrictedDefault> =
            RestrictedDefault::ALL.into_iter().filter(|d| fill && d.wanted(sc, context)).collect();
        let item = || {
            let kind = if i < init { init_kind(container) } else { "container" };
            format!("{kind} {:?}", name(container))
        };
        if wanted.is_empty() {
            lowered.judge(item, |at, found| container_findings(read, context, at, found));
            continue;
        }
        let mut read = read.clone();
        wanted.iter().for_each(|d| d.read_into(read.security.get_or_insert_default()));
        lowered.judge(item, |at, found| container_findings(&read, context, at, found));
        let sc = object_at(
            container.to_mut().as_object_mut().expect("container templates are objects"),
            "securityContext",
        );
        wanted.iter().for_each(|d| d.write_into(sc));
        let paths: Vec<&str> = wanted.iter().map(|d| d.path()).collect();
        filled.push(format!("{}={}", name(container), paths.join(",")));
    }
    for volume in profile.volumes.iter().filter(|_| judging) {
        let read = volume_of(volume);
        lowered.judge(|| format!("volume {:?}", name(volume)), |at, found| volume_findings(&read, at, found));
    }
    for (key, value) in profile.annotations.iter().filter(|_| judging) {
        lowered.judge(|| format!("annotation {key:?}"), |_, found| annotation_findings(key, value, found));
    }
    if !filled.is_empty() {
        profile.values.push(format!("restrictedDefaults:{}", filled.join(";")));
    }
    Secured { lowered: (!lowered.items.is_empty()).then_some(lowered), refused }
}

impl Lowered {
    /// Judge one addition with `checks` at the Pod's level; one that fails it is kept, and lowers
    /// the Pod to baseline when it passes that, to privileged when it does not.
    fn judge(&mut self, item: impl FnOnce() -> String, checks: impl Fn(Level, &mut Findings)) {
        let mut found = Findings::new();
        checks(self.from, &mut found);
        if found.is_empty() {
            return;
        }
        let below_baseline = self.from == Level::Baseline || {
            let mut baseline = Findings::new();
            checks(Level::Baseline, &mut baseline);
            !baseline.is_empty()
        };
        self.to = self.to.min(if below_baseline { Level::Privileged } else { Level::Baseline });
        self.items.push((item(), found));
    }
}

/// The highest level `profile`'s additions can keep, in the Pod most favourable to them (one that
/// sets `runAsNonRoot` and a seccomp profile for its containers), with what stops it going higher,
/// as in `container "tcpdump" adds NET_RAW`.
pub(crate) fn profile_level(profile: &Profile) -> (Level, Vec<String>) {
    let favourable = SecurityContext {
        run_as_non_root: Some(true),
        seccomp: Some(ProfileType::Confined),
        ..SecurityContext::default()
    };
    let context = Context { pod: Some(&favourable), ..Context::default() };
    let Some(lowered) = secure(&mut unfilled(profile), &context, Level::Restricted).lowered else {
        return (Level::Restricted, Vec::new());
    };
    // Below baseline: say why not baseline.
    let lowered = match lowered.to {
        Level::Privileged => {
            secure(&mut unfilled(profile), &context, Level::Baseline).lowered.unwrap_or(lowered)
        }
        _ => lowered,
    };
    let reasons = lowered.items.iter().map(|(item, found)| format!("{item} {}", found.join(", "))).collect();
    (lowered.to, reasons)
}

/// The profile with its placeholders left in, as `config check` judges it.
fn unfilled<'c>(profile: &'c Profile) -> Resolved<'c> {
    let raw = |templates: &'c [Template]| -> Vec<Rendered<'c>> {
        templates.iter().map(|t| Rendered::Filled(t.value().clone())).collect()
    };
    let text = |entries: &'c [(String, Template)]| {
        entries
            .iter()
            .map(|(k, t)| (k.as_str(), Cow::Borrowed(t.value().as_str().unwrap_or_default())))
            .collect()
    };
    Resolved {
        profile,
        init_containers: raw(&profile.init_containers),
        containers: raw(&profile.containers),
        volumes: raw(&profile.volumes),
        app_env: Vec::new(),
        app_volume_mounts: Vec::new(),
        labels: text(&profile.labels),
        annotations: text(&profile.annotations),
        values: Vec::new(),
    }
}

/// The object under `key`, made one when it is absent or `null`.
fn object_at<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let value = map.entry(key).or_insert(Value::Null);
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    value.as_object_mut().expect("made an object above")
}

fn name(item: &Value) -> &str {
    item.get("name").and_then(Value::as_str).unwrap_or_default()
}

fn init_kind(container: &Value) -> &'static str {
    match container.get("restartPolicy").and_then(Value::as_str) {
        Some("Always") => "sidecar",
        _ => "init container",
    }
}
