//! [`Plan`]: everything to add to one Pod, built profile by profile, with the clashes found on
//! the way. Only additions: nothing the Pod has is replaced or removed.

use std::borrow::Cow;

use serde_json::Value;

use super::names::{mount_path, name_of};
use super::pod_view::PodView;
use super::resolve::Resolved;
use super::template::Rendered;

/// Labels or annotations to add: each key, borrowed from the configuration, with its value.
pub(crate) type AddedEntries<'c> = [(&'c str, Cow<'c, str>)];

/// Everything to add to one Pod. Only additions: nothing the Pod has is replaced or removed.
/// Items are borrowed from the configuration, or owned when a profile filled them for this Pod.
#[derive(Debug, Default)]
pub(crate) struct Plan<'c> {
    /// Labels the Pod does not have yet.
    pub labels: Vec<(&'c str, Cow<'c, str>)>,
    /// Annotations the Pod does not have yet, the status annotation last.
    pub annotations: Vec<(&'c str, Cow<'c, str>)>,
    /// Init containers and native sidecars, to run before the Pod's own init containers.
    pub init_containers: Vec<Rendered<'c>>,
    pub containers: Vec<Rendered<'c>>,
    pub volumes: Vec<Rendered<'c>>,
    /// `imagePullSecrets` items (`{"name": …}`) the Pod does not list yet.
    pub image_pull_secrets: Vec<Rendered<'c>>,
    /// For each of the Pod's own containers, in order: what to append. Empty when no profile adds
    /// anything to the app containers.
    pub app_containers: Vec<AppAdditions<'c>>,
}

#[derive(Debug, Default)]
pub(crate) struct AppAdditions<'c> {
    pub env: Vec<Rendered<'c>>,
    pub volume_mounts: Vec<Rendered<'c>>,
}

/// Add one resolved profile; a container or volume the Pod or another profile has already is a
/// problem. Its labels and annotations are left in `profile` for [`add_metadata`].
pub(crate) fn add_profile<'c>(
    plan: &mut Plan<'c>,
    profile: &mut Resolved<'c>,
    view: &PodView,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let p = &profile.profile.name;
    for container in profile.init_containers.iter().chain(&profile.containers) {
        let name = name_of(container);
        if view.has_container(name) {
            problems.push(format!("profile {p:?} adds container {name:?}, which the Pod already has"));
        } else if plan.init_containers.iter().chain(&plan.containers).any(|c| name_of(c) == name) {
            problems.push(format!(
                "profile {p:?} adds container {name:?}, which another selected profile adds too"
            ));
        }
    }
    for volume in &profile.volumes {
        let name = name_of(volume);
        if view.has_volume(name) {
            problems.push(format!("profile {p:?} adds volume {name:?}, which the Pod already has"));
        } else if plan.volumes.iter().any(|v| name_of(v) == name) {
            problems
                .push(format!("profile {p:?} adds volume {name:?}, which another selected profile adds too"));
        }
    }
    plan.init_containers.append(&mut profile.init_containers);
    plan.containers.append(&mut profile.containers);
    plan.volumes.append(&mut profile.volumes);
    for secret in &profile.profile.image_pull_secrets {
        let listed = |items: &[Rendered]| items.iter().any(|s| name_of(s) == secret);
        if !view.image_pull_secrets.iter().any(|s| s == secret) && !listed(&plan.image_pull_secrets) {
            plan.image_pull_secrets.push(Rendered::Filled(serde_json::json!({ "name": secret })));
        }
    }

    if profile.app_env.is_empty() && profile.app_volume_mounts.is_empty() {
        return;
    }
    if plan.app_containers.is_empty() {
        plan.app_containers = view.containers.iter().map(|_| AppAdditions::default()).collect();
    }
    for (i, (app, added)) in view.containers.iter().zip(&mut plan.app_containers).enumerate() {
        // Read for every configuration that gets here (`Config::adds_to_app_containers`).
        let lists = view.app_lists.get(i);
        let env = AppField {
            own: lists.and_then(|l| l.env.as_deref()).unwrap_or_default(),
            key: name_of,
            kept: "sets",
            what: "value",
        };
        env.add(&mut added.env, &profile.app_env, &app.name, warnings);
        let own = lists.and_then(|l| l.volume_mounts.as_deref()).unwrap_or_default();
        let mounts = AppField { own, key: mount_path, kept: "mounts", what: "mount" };
        mounts.add(&mut added.volume_mounts, &profile.app_volume_mounts, &app.name, warnings);
    }
}

/// A list of an app container's (env or volumeMounts), keyed by name or mount path: what the
/// container has itself is kept, with a warning, and ours is not added.
struct AppField<'a> {
    own: &'a [Cow<'a, str>],
    key: fn(&Value) -> &str,
    /// For the warning: "already sets X; its own value is kept".
    kept: &'static str,
    what: &'static str,
}

impl AppField<'_> {
    fn add<'c>(
        &self,
        added: &mut Vec<Rendered<'c>>,
        ours: &[Rendered<'c>],
        app: &str,
        warnings: &mut Vec<String>,
    ) {
        for item in ours {
            let key = (self.key)(item);
            if self.own.iter().any(|own| own == key) || added.iter().any(|other| (self.key)(other) == key) {
                let (kept, what) = (self.kept, self.what);
                warnings.push(format!(
                    "sidecar-injector: container {app:?} already {kept} {key}; its own {what} is kept"
                ));
            } else {
                added.push(item.clone());
            }
        }
    }
}

/// Labels and annotations the Pod already has are the Pod's: its value wins, with a warning when
/// it differs from ours.
pub(crate) fn add_metadata<'c>(
    plan: &mut Plan<'c>,
    labels: impl IntoIterator<Item = (&'c str, Cow<'c, str>)>,
    annotations: impl IntoIterator<Item = (&'c str, Cow<'c, str>)>,
    view: &PodView,
    warnings: &mut Vec<String>,
) {
    for (key, value) in labels {
        match view.label(key) {
            Some(own) if own != value => warnings
                .push(format!("sidecar-injector: label {key} is kept as {own:?}, not set to {value:?}")),
            Some(_) => {}
            None if plan.labels.iter().any(|(k, _)| *k == key) => {}
            None => plan.labels.push((key, value)),
        }
    }
    for (key, value) in annotations {
        match view.annotation(key) {
            Some(own) if own != value => {
                warnings.push(format!("sidecar-injector: annotation {key} is kept as the Pod has it"))
            }
            Some(_) => {}
            None if plan.annotations.iter().any(|(k, _)| *k == key) => {}
            None => plan.annotations.push((key, value)),
        }
    }
}

/// The mounts of `profile` that name a volume the Pod would not have (neither its own nor one of
/// `added`, the volumes of every selected profile): the API server refuses such a Pod, so it is a
/// problem found here, with the profile's `onError`, never a patch the API server will refuse.
pub(crate) fn unmounted(added: &[&str], view: &PodView, profile: &Resolved) -> Vec<String> {
    let exists = |volume: &str| view.has_volume(volume) || added.contains(&volume);
    let mut missing = Vec::new();
    for container in profile.init_containers.iter().chain(&profile.containers) {
        let mounts = container.get("volumeMounts").and_then(Value::as_array).into_iter().flatten();
        for volume in mounts.map(name_of).filter(|volume| !exists(volume)) {
            missing.push(format!(
                "profile {:?} container {:?} mounts volume {volume:?}, which the Pod does not have",
                profile.profile.name,
                name_of(container)
            ));
        }
    }
    for volume in profile.app_volume_mounts.iter().map(|m| name_of(m)).filter(|volume| !exists(volume)) {
        missing.push(format!(
            "profile {:?} mounts volume {volume:?} in the app containers, which the Pod does not have",
            profile.profile.name
        ));
    }
    missing
}

/// The names of the volumes the resolved profiles add.
pub(crate) fn volume_names<'r>(profiles: &'r [Resolved]) -> Vec<&'r str> {
    profiles.iter().flat_map(|p| p.volumes.iter().map(|v| name_of(v))).collect()
}
