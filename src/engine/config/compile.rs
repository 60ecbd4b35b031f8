//! Checking a configuration as read and compiling it into what reviews use: every check that can be
//! made without a Pod is made here, once, at load.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::fields;
use super::raw::{RawConfig, RawProfile};
use super::{Config, ConfigError, Profile, digest_of, keys};
use crate::names;
use crate::selection::Selection;

pub(super) fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
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
    check_containers(&raw, path)?;
    check_volumes(&raw, path)?;
    check_app_containers(&raw, path)?;
    let selection = Selection::compile(raw.selector.as_ref(), &raw.namespaces, path)?;
    Ok(build_profile(name, raw, selection))
}

/// Names are DNS labels, once each in the profile; every container has an image; only sidecars
/// run with `restartPolicy: Always`, which they get without saying.
fn check_containers(raw: &RawProfile, path: &str) -> Result<(), ConfigError> {
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
                let twice = format!("{:?} is used twice in this profile", container.name);
                return Err(ConfigError::at(at(".name"), twice));
            }
            container_names.push(&container.name);
            if container.image.as_deref().unwrap_or("").is_empty() {
                return Err(ConfigError::at(at(".image"), "an image is required"));
            }
            check_restart_policy(field, container.restart_policy.as_deref(), || at(".restartPolicy"))?;
            fields::check_container(container, &at(""))?;
        }
    }
    Ok(())
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
        let at = format!("{path}.volumes[{i}].name");
        if let Err(why) = names::dns_label(&volume.name) {
            return Err(ConfigError::at(at, format!("volume name {why}")));
        }
        if volume_names.contains(&volume.name.as_str()) {
            return Err(ConfigError::at(at, format!("{:?} is used twice in this profile", volume.name)));
        }
        volume_names.push(&volume.name);
    }
    Ok(())
}

fn check_app_containers(raw: &RawProfile, path: &str) -> Result<(), ConfigError> {
    fields::check_env(&raw.app_containers.env, &format!("{path}.appContainers.env"))?;
    for (i, mount) in raw.app_containers.volume_mounts.iter().enumerate() {
        if mount.name.is_empty() || mount.mount_path.is_empty() {
            return Err(ConfigError::at(
                format!("{path}.appContainers.volumeMounts[{i}]"),
                "name and mountPath must not be empty",
            ));
        }
    }
    Ok(())
}

/// The templates as the JSON they are inserted as (sidecars become init containers with
/// `restartPolicy: Always`), and the hash of everything the profile adds.
fn build_profile(name: String, raw: RawProfile, selection: Selection) -> Profile {
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
        selection,
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
    profile
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
