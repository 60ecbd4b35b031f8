//! The fields of a container template the Kubernetes types accept but the API server refuses:
//! quantities that do not parse, ports out of range, unknown protocols, bad port and env var
//! names. Caught at load, with the field's path, not by the API server for every Pod later.

use k8s_openapi::api::core::v1::{Container, EnvVar};

use super::ConfigError;
use crate::names;

/// Check one container template at `at`, as in `profiles.p.sidecars[0]`.
pub(super) fn check_container(container: &Container, at: &str) -> Result<(), ConfigError> {
    for (kind, quantities) in [
        ("limits", container.resources.as_ref().and_then(|r| r.limits.as_ref())),
        ("requests", container.resources.as_ref().and_then(|r| r.requests.as_ref())),
    ] {
        for (resource, quantity) in quantities.into_iter().flatten() {
            let path = format!("{at}.resources.{kind}.{resource}");
            names::quantity(&quantity.0).map_err(|why| ConfigError::at(path, why))?;
        }
    }
    for (i, port) in container.ports.iter().flatten().enumerate() {
        let path = |field: &str| format!("{at}.ports[{i}].{field}");
        if !(1..=65535).contains(&port.container_port) {
            return Err(ConfigError::at(
                path("containerPort"),
                format!("{} is not a port (1 to 65535)", port.container_port),
            ));
        }
        if let Some(host) = port.host_port.filter(|p| !(0..=65535).contains(p)) {
            return Err(ConfigError::at(path("hostPort"), format!("{host} is not a port (1 to 65535)")));
        }
        if let Some(protocol) = port.protocol.as_deref().filter(|p| !["TCP", "UDP", "SCTP"].contains(p)) {
            return Err(ConfigError::at(path("protocol"), format!("{protocol:?} is not TCP, UDP or SCTP")));
        }
        if let Some(name) = &port.name {
            names::port_name(name)
                .map_err(|why| ConfigError::at(path("name"), format!("port name {why}")))?;
        }
    }
    check_env(container.env.as_deref().unwrap_or_default(), &format!("{at}.env"))
}

/// Env var names, as in a template's `env` or the profile's `appContainers.env`.
pub(super) fn check_env(env: &[EnvVar], at: &str) -> Result<(), ConfigError> {
    for (i, var) in env.iter().enumerate() {
        names::env_var_name(&var.name)
            .map_err(|why| ConfigError::at(format!("{at}[{i}].name"), format!("env var name {why}")))?;
    }
    Ok(())
}
