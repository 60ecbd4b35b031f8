//! Checking a configuration as read and compiling it into what reviews use: every check that can be
//! made without a Pod is made here, once, at load.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;

use super::params::{self, Declared};
use super::raw::{RawConfig, RawProfile};
use super::templates::{self, Templates};
use super::{Config, CopyEnv, Profile, ShareVolumeMounts, Targets, digest_of, keys, status};
use crate::error::ConfigError;
use crate::names;
use crate::names::name_of;
use crate::selection::Selection;

pub(super) fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    for (field, map) in [("labels", &raw.labels), ("annotations", &raw.annotations)] {
        if let Some(key) = map.iter().find_map(|(key, value)| value.contains("%{").then_some(key)) {
            return Err(ConfigError::at(
                format!("{field}.{key}"),
                "placeholders work in profiles only (they have the parameters); move it into a profile",
            ));
        }
    }
    check_string_map(&raw.labels, "labels", true)?;
    check_string_map(&raw.annotations, "annotations", false)?;
    for (key, value) in &raw.annotations {
        // Added to every Pod, with no profile's onError to answer for it: refused here instead.
        let mut found = Vec::new();
        crate::pod_security::annotation_findings(key, value, &mut found);
        if let Some(why) = found.first() {
            return Err(ConfigError::at(
                format!("annotations.{key}"),
                format!("would lower Pods below baseline: {why}"),
            ));
        }
    }

    let mut profiles = BTreeMap::new();
    for (name, profile) in raw.profiles {
        let path = format!("profiles.{name}");
        if let Err(why) = names::dns_label(&name) {
            return Err(ConfigError::at(path, format!("profile name {why}")));
        }
        profiles.insert(name.clone(), compile_profile(name, profile, &path)?);
    }
    check_parameters_read_from_the_pod(&raw.labels, &raw.annotations, &profiles)?;
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
    for profile in profiles.values_mut().filter(|p| p.parameters.is_empty() && p.built_ins.is_empty()) {
        profile.status_alone = Some(status(&digest, std::iter::once((&*profile, &[][..]))));
    }
    let adds_to_app_containers =
        profiles.values().any(|p| !p.app_env.is_empty() || !p.app_volume_mounts.is_empty());
    Ok(Config {
        adds_to_app_containers,
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

fn compile_profile(name: String, mut raw: RawProfile, path: &str) -> Result<Profile, ConfigError> {
    check_string_map(&raw.labels, &format!("{path}.labels"), false)?;
    check_string_map(&raw.annotations, &format!("{path}.annotations"), false)?;
    check_containers(&raw, path)?;
    check_volumes(&raw, path)?;
    let image_pull_secrets = image_pull_secrets(&raw, path)?;
    let selection = Selection::compile(raw.selector.as_ref(), &raw.namespaces, path)?;
    let parameters = params::compile_all(std::mem::take(&mut raw.parameters), path)?;
    let templates = Templates::compile(&raw, path, &Declared(&parameters))?;
    let digest = profile_digest(&raw, &templates);
    let sidecars_from = raw.init_containers.len();
    let copy_env =
        raw.copy_env.map(|c| CopyEnv { names: c.names, from: c.from, containers: Targets(c.containers) });
    let share_volume_mounts = raw
        .share_volume_mounts
        .map(|s| ShareVolumeMounts { read_only: s.read_only, containers: Targets(s.containers) });
    let profile = Profile {
        name,
        containers: templates.containers,
        init_containers: templates.init_containers,
        volumes: templates.volumes,
        app_env: templates.app_env,
        app_volume_mounts: templates.app_volume_mounts,
        labels: templates.labels,
        annotations: templates.annotations,
        on_error: raw.on_error,
        selection,
        parameters,
        copy_env,
        share_volume_mounts,
        image_pull_secrets,
        restricted_defaults: raw.restricted_defaults,
        containers_read: Vec::new(),
        built_ins: Vec::new(),
        digest,
        status_alone: None,
    };
    let mut profile = templates::check(profile, path, sidecars_from)?;
    check_app_values(&profile, path)?;
    let templates = profile.init_containers.iter().chain(&profile.containers);
    profile.containers_read = templates.map(|t| crate::skeleton::owned_container(t.value())).collect();
    Ok(profile)
}

/// The hash of everything a profile adds, as the status annotation carries it. A profile that
/// uses none of `copyEnv` and `shareVolumeMounts` hashes exactly as before they existed: a new
/// release must not make every Pod injected by the old one look stale (`audit` would restart them
/// all). Parameters' values are hashed per Pod (see `status`).
fn profile_digest(raw: &RawProfile, templates: &Templates) -> String {
    let added = (
        values(&templates.containers),
        values(&templates.init_containers),
        values(&templates.volumes),
        values(&templates.app_env),
        values(&templates.app_volume_mounts),
        &raw.labels,
        &raw.annotations,
    );
    let secrets: Vec<&str> = raw.image_pull_secrets.iter().map(|s| s.name.as_str()).collect();
    // Each new field joins the hash only when used, for the same reason.
    match (&raw.copy_env, &raw.share_volume_mounts) {
        (None, None) if secrets.is_empty() => digest_of(&added),
        (None, None) => digest_of(&(added, secrets)),
        app_values if secrets.is_empty() => digest_of(&(added, app_values)),
        app_values => digest_of(&(added, app_values, secrets)),
    }
}

fn values(templates: &[crate::template::Template]) -> Vec<&serde_json::Value> {
    templates.iter().map(crate::template::Template::value).collect()
}

/// A parameter is read from a label or annotation the Pod's author sets, never from one this
/// configuration adds: a Pod injected once would read our own value on re-review, and the status
/// hash would no longer match the Pod we injected.
fn check_parameters_read_from_the_pod(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    profiles: &BTreeMap<String, Profile>,
) -> Result<(), ConfigError> {
    let ours = |key: &str, are_labels: bool| {
        let top = if are_labels { labels.contains_key(key) } else { annotations.contains_key(key) };
        top || profiles.values().any(|p| {
            let added = if are_labels { &p.labels } else { &p.annotations };
            added.iter().any(|(k, _)| k == key)
        })
    };
    for (name, profile) in profiles {
        for parameter in &profile.parameters {
            let sources = [("annotation", &parameter.annotation, false), ("label", &parameter.label, true)];
            for (field, key, are_labels) in sources {
                if let Some(key) = key.as_deref().filter(|key| ours(key, are_labels)) {
                    return Err(ConfigError::at(
                        format!("profiles.{name}.parameters.{}.{field}", parameter.name),
                        format!(
                            "{key} is a{} this configuration adds itself; read the value from a key the Pod sets",
                            if are_labels { " label" } else { "n annotation" }
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `copyEnv` and `shareVolumeMounts` name containers of the profile; a copied env var is one no
/// template of its targets sets itself (Kubernetes would keep the later one, silently).
fn check_app_values(profile: &Profile, path: &str) -> Result<(), ConfigError> {
    let all: Vec<&str> =
        profile.init_containers.iter().chain(&profile.containers).map(|t| name_of(t.value())).collect();
    let targets = |field: &str, named: &Targets| -> Result<(), ConfigError> {
        match named.0.iter().enumerate().find(|(_, name)| !all.contains(&name.as_str())) {
            Some((i, name)) => Err(ConfigError::at(
                format!("{path}.{field}.containers[{i}]"),
                format!("{name:?} is no container of this profile (it has {})", all.join(", ")),
            )),
            None => Ok(()),
        }
    };
    if let Some(share) = &profile.share_volume_mounts {
        targets("shareVolumeMounts", &share.containers)?;
    }
    let Some(copy) = &profile.copy_env else { return Ok(()) };
    targets("copyEnv", &copy.containers)?;
    if copy.names.is_empty() {
        return Err(ConfigError::at(format!("{path}.copyEnv.names"), "name at least one env var to copy"));
    }
    if let Some(Err(why)) = copy.from.as_deref().map(names::dns_label) {
        return Err(ConfigError::at(format!("{path}.copyEnv.from"), format!("container name {why}")));
    }
    for (i, name) in copy.names.iter().enumerate() {
        let at = format!("{path}.copyEnv.names[{i}]");
        names::env_var_name(name).map_err(|why| ConfigError::at(&at, format!("env var name {why}")))?;
        let into = profile.init_containers.iter().chain(&profile.containers).map(|t| t.value());
        for target in into.filter(|c| copy.containers.includes(name_of(c))) {
            let env = target.get("env").and_then(serde_json::Value::as_array).into_iter().flatten();
            if env.map(name_of).any(|set| set == name) {
                let why = format!(
                    "container {:?} sets {name} itself; copy it or set it, not both",
                    name_of(target)
                );
                return Err(ConfigError::at(at, why));
            }
        }
    }
    Ok(())
}

/// Names are DNS labels, once each in the profile; every container has an image; only sidecars
/// run with `restartPolicy: Always`, which they get without saying.
fn check_containers(raw: &RawProfile, path: &str) -> Result<(), ConfigError> {
    let mut container_names: Vec<&str> = Vec::new();
    for (field, list) in groups(raw) {
        for (i, container) in list.iter().enumerate() {
            let at = |f: &str| format!("{path}.{field}[{i}]{f}");
            if let Err(why) = names::dns_label(&container.name) {
                return Err(ConfigError::at(at(".name"), format!("container name {why}")));
            }
            if container_names.contains(&container.name.as_str()) {
                let twice = format!("{:?} is used twice in this profile", container.name);
                return Err(ConfigError::at(at(".name"), twice));
            }
            container_names.push(&container.name);
            check_restart_policy(field, container.restart_policy.as_deref(), || at(".restartPolicy"))?;
        }
    }
    Ok(())
}

fn groups(raw: &RawProfile) -> [(&'static str, &Vec<Container>); 3] {
    [("containers", &raw.containers), ("initContainers", &raw.init_containers), ("sidecars", &raw.sidecars)]
}

fn check_restart_policy(
    field: &str,
    restart: Option<&str>,
    at: impl Fn() -> String,
) -> Result<(), ConfigError> {
    match (field, restart) {
        (_, None) | ("sidecars", Some("Always")) => Ok(()),
        ("sidecars", Some(other)) => {
            Err(ConfigError::at(at(), format!("a sidecar runs with Always, not {other:?}; leave it out")))
        }
        (_, Some(_)) => Err(ConfigError::at(
            at(),
            "only sidecars take a restartPolicy (Always); leave it out or move the container to sidecars",
        )),
    }
}

fn check_volumes(raw: &RawProfile, path: &str) -> Result<(), ConfigError> {
    let mut volume_names: Vec<&str> = Vec::new();
    for (i, volume) in raw.volumes.iter().enumerate() {
        if volume_names.contains(&volume.name.as_str()) {
            let at = format!("{path}.volumes[{i}].name");
            return Err(ConfigError::at(at, format!("{:?} is used twice in this profile", volume.name)));
        }
        volume_names.push(&volume.name);
    }
    Ok(())
}

/// The names of a profile's `imagePullSecrets`: Secret names, each once.
fn image_pull_secrets(raw: &RawProfile, path: &str) -> Result<Vec<String>, ConfigError> {
    let mut secrets: Vec<String> = Vec::with_capacity(raw.image_pull_secrets.len());
    for (i, secret) in raw.image_pull_secrets.iter().enumerate() {
        let at = format!("{path}.imagePullSecrets[{i}].name");
        names::dns_subdomain(&secret.name)
            .map_err(|why| ConfigError::at(&at, format!("Secret name {why}")))?;
        if secrets.contains(&secret.name) {
            return Err(ConfigError::at(at, format!("{:?} is listed twice", secret.name)));
        }
        secrets.push(secret.name.clone());
    }
    Ok(secrets)
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
