//! A profile's templates compiled (placeholders found and named) and checked: once as written and
//! once filled with each parameter's default, so that a template that could only ever make an
//! invalid Pod is refused at load, with its path.

use serde::Serialize;
use serde_json::Value;

use super::Profile;
use super::raw::RawProfile;
use crate::error::ConfigError;
use crate::fields::{self, Found, Kind};
use crate::template::{BUILT_INS, Expands, Names, Source, Template, UNKNOWN};

/// The templates of one profile, compiled, before they go into its [`Profile`].
pub(super) struct Templates {
    pub containers: Vec<Template>,
    pub init_containers: Vec<Template>,
    pub volumes: Vec<Template>,
    pub app_env: Vec<Template>,
    pub app_volume_mounts: Vec<Template>,
    pub labels: Vec<(String, Template)>,
    pub annotations: Vec<(String, Template)>,
}

impl Templates {
    pub fn compile(raw: &RawProfile, path: &str, names: &dyn Names) -> Result<Templates, ConfigError> {
        let list = |items: Vec<Value>, field: &str, expands| {
            compile_list(items, &format!("{path}.{field}"), names, expands)
        };
        let mut sidecars = raw.sidecars.clone();
        for sidecar in &mut sidecars {
            sidecar.restart_policy = Some("Always".into());
        }
        let mut init_containers = list(json(&raw.init_containers), "initContainers", Expands::Container)?;
        init_containers.extend(list(json(&sidecars), "sidecars", Expands::Container)?);
        let text = |map: &std::collections::BTreeMap<String, String>, field: &str| {
            map.iter()
                .map(|(key, value)| {
                    Ok((key.clone(), Template::text(value, &format!("{path}.{field}.{key}"), names)?))
                })
                .collect::<Result<Vec<_>, ConfigError>>()
        };
        Ok(Templates {
            containers: list(json(&raw.containers), "containers", Expands::Container)?,
            init_containers,
            volumes: list(json(&raw.volumes), "volumes", Expands::No)?,
            app_env: list(json(&raw.app_containers.env), "appContainers.env", Expands::EnvVar)?,
            app_volume_mounts: list(
                json(&raw.app_containers.volume_mounts),
                "appContainers.volumeMounts",
                Expands::No,
            )?,
            labels: text(&raw.labels, "labels")?,
            annotations: text(&raw.annotations, "annotations")?,
        })
    }
}

/// The Kubernetes objects as the JSON they are inserted as.
fn json<T: Serialize>(items: &[T]) -> Vec<Value> {
    items.iter().map(|item| serde_json::to_value(item).expect("Kubernetes types always serialize")).collect()
}

fn compile_list(
    items: Vec<Value>,
    path: &str,
    names: &dyn Names,
    expands: Expands,
) -> Result<Vec<Template>, ConfigError> {
    let compile = |(i, item)| Template::compile(item, &format!("{path}[{i}]"), names, expands);
    items.into_iter().enumerate().map(compile).collect()
}

/// Names are identity (clashes and references are checked against them), so they take no
/// placeholders; every declared parameter is used; and every template, filled with the
/// parameters' defaults, passes the field checks. Records the built-ins the profile reads.
pub(super) fn check(mut profile: Profile, path: &str, sidecars_from: usize) -> Result<Profile, ConfigError> {
    let named = |field: &str, templates: &[Template], fixed: &[&str]| -> Result<(), ConfigError> {
        for (i, template) in templates.iter().enumerate() {
            if let Some(pointer) = template.hole_pointers().find(|p| is_name(p, fixed)) {
                return Err(ConfigError::at(
                    format!("{path}.{field}[{i}]{}", crate::template::readable(pointer)),
                    "names take no placeholders: clashes and references are checked against them at load",
                ));
            }
        }
        Ok(())
    };
    let container_names = ["/name", "/env/*/name", "/volumeMounts/*/name"];
    named("containers", &profile.containers, &container_names)?;
    named("initContainers", &profile.init_containers, &container_names)?;
    named("volumes", &profile.volumes, &["/name"])?;
    named("appContainers.env", &profile.app_env, &["/name"])?;
    named("appContainers.volumeMounts", &profile.app_volume_mounts, &["/name"])?;

    let used: Vec<Source> = every_template(&profile).flat_map(Template::sources).collect();
    for (i, parameter) in profile.parameters.iter().enumerate() {
        if !used.contains(&Source::Parameter(i)) {
            return Err(ConfigError::at(
                format!("{path}.parameters.{}", parameter.name),
                "declared, but no template uses it",
            ));
        }
    }
    profile.built_ins = BUILT_INS.iter().map(|(_, s)| *s).filter(|s| used.contains(s)).collect();
    with_samples(&profile, path, sidecars_from)?;
    Ok(profile)
}

/// Whether a hole at `pointer` is one of the `fixed` pointers (`*` standing for any index).
fn is_name(pointer: &str, fixed: &[&str]) -> bool {
    fixed.iter().any(|f| {
        let (mut a, mut b) = (pointer.split('/'), f.split('/'));
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x == y || (y == "*" && x.parse::<usize>().is_ok()) => {}
                _ => return false,
            }
        }
    })
}

/// Every template of a profile.
fn every_template(profile: &Profile) -> impl Iterator<Item = &Template> {
    let lists = [
        &profile.containers,
        &profile.init_containers,
        &profile.volumes,
        &profile.app_env,
        &profile.app_volume_mounts,
    ];
    let metadata = profile.labels.iter().chain(&profile.annotations).map(|(_, t)| t);
    lists.into_iter().flatten().chain(metadata)
}

/// The field checks on every template filled with its parameters' defaults (or first allowed
/// value), the built-ins with typical values; a parameter with neither is checked at review.
fn with_samples(profile: &Profile, path: &str, sidecars_from: usize) -> Result<(), ConfigError> {
    let sample = |source: Source| match source {
        Source::Parameter(i) => profile.parameters[i].sample().unwrap_or(UNKNOWN),
        Source::Namespace | Source::ServiceAccountName => "default",
        Source::AppContainer => "app",
    };
    let checked =
        |field: &str, i: usize, template: &Template, check: &dyn Fn(&Value) -> Result<(), Found>| {
            check(&template.render(&sample)).map_err(|(inner, why)| {
                let filled = if template.has_holes() { " (with the parameters' defaults)" } else { "" };
                ConfigError::at(format!("{path}.{field}[{i}]{inner}"), format!("{why}{filled}"))
            })
        };
    for (i, c) in profile.containers.iter().enumerate() {
        checked("containers", i, c, &|c| fields::container(c, Kind::Running))?;
    }
    for (i, c) in profile.init_containers.iter().enumerate() {
        match i.checked_sub(sidecars_from) {
            None => checked("initContainers", i, c, &|c| fields::container(c, Kind::Init))?,
            Some(i) => checked("sidecars", i, c, &|c| fields::container(c, Kind::Running))?,
        }
    }
    for (i, v) in profile.volumes.iter().enumerate() {
        checked("volumes", i, v, &fields::volume)?;
    }
    for (i, e) in profile.app_env.iter().enumerate() {
        checked("appContainers.env", i, e, &fields::env_var)?;
    }
    for (i, m) in profile.app_volume_mounts.iter().enumerate() {
        checked("appContainers.volumeMounts", i, m, &fields::volume_mount)?;
    }
    for (key, template) in &profile.labels {
        let value = template.render(&sample);
        fields::label_value(value.as_str().unwrap_or_default())
            .map_err(|why| ConfigError::at(format!("{path}.labels.{key}"), why))?;
    }
    Ok(())
}
