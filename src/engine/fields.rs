//! The fields of a template the Kubernetes types accept but the API server refuses: quantities
//! that do not parse, ports out of range, unknown protocols, bad names, probes without exactly one
//! handler, contradictory security contexts. Checked on the JSON that is inserted, so the same
//! check runs at load (on the template, placeholders filled with their parameters' defaults) and
//! at review (on a template filled with a Pod's values).

use serde_json::Value;

use crate::names;
use crate::names::name_of;
use crate::template::UNKNOWN;

/// What is wrong and where, relative to the template: `(".resources.limits.cpu", "…")`.
pub(crate) type Found = (String, String);

/// What a container template is, for the rules that differ.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular container, or a native sidecar (an init container with `restartPolicy: Always`).
    Running,
    /// A plain init container, which runs to completion: no probes, no lifecycle.
    Init,
}

/// Check one container template.
pub(crate) fn container(c: &Value, kind: Kind) -> Result<(), Found> {
    let text = |field: &str| c.get(field).and_then(Value::as_str);
    checked(text("name").unwrap_or_default(), ".name", |n| {
        names::dns_label(n).map_err(|w| format!("container name {w}"))
    })?;
    match text("image") {
        Some(image) if !image.is_empty() && image.trim() == image => {}
        Some(image) if !image.is_empty() => {
            return found(".image", format!("{image:?} has leading or trailing spaces"));
        }
        _ => return found(".image", "an image is required".into()),
    }
    resources(c)?;
    for (i, port) in items(c, "ports").enumerate() {
        ports(port, &format!(".ports[{i}]"))?;
    }
    for (i, var) in items(c, "env").enumerate() {
        checked(name_of(var), &format!(".env[{i}].name"), |n| {
            names::env_var_name(n).map_err(|w| format!("env var name {w}"))
        })?;
    }
    for (i, mount) in items(c, "volumeMounts").enumerate() {
        volume_mount(mount).map_err(|(at, why)| (format!(".volumeMounts[{i}]{at}"), why))?;
    }
    for which in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get(which).filter(|p| !p.is_null()) {
            if kind == Kind::Init {
                return found(
                    &format!(".{which}"),
                    "a plain init container takes no probes; make it a sidecar".into(),
                );
            }
            probe(p, which).map_err(|(at, why)| (format!(".{which}{at}"), why))?;
        }
    }
    if kind == Kind::Init && c.get("lifecycle").is_some_and(|l| !l.is_null()) {
        return found(
            ".lifecycle",
            "a plain init container takes no lifecycle hooks; make it a sidecar".into(),
        );
    }
    c.get("securityContext").map_or(Ok(()), security_context)
}

/// An app container's mount, or one of a container template's.
pub(crate) fn volume_mount(mount: &Value) -> Result<(), Found> {
    for field in ["name", "mountPath"] {
        if mount.get(field).and_then(Value::as_str).unwrap_or_default().is_empty() {
            return found(&format!(".{field}"), "must not be empty".into());
        }
    }
    Ok(())
}

/// An env var of `appContainers.env`.
pub(crate) fn env_var(var: &Value) -> Result<(), Found> {
    checked(name_of(var), ".name", |n| names::env_var_name(n).map_err(|w| format!("env var name {w}")))
}

/// A volume template: its name, and the names of what it refers to.
pub(crate) fn volume(v: &Value) -> Result<(), Found> {
    checked(name_of(v), ".name", |n| names::dns_label(n).map_err(|w| format!("volume name {w}")))?;
    for (source, field) in
        [("configMap", "name"), ("secret", "secretName"), ("persistentVolumeClaim", "claimName")]
    {
        if let Some(referred) = v.get(source).and_then(|s| s.get(field)).and_then(Value::as_str) {
            checked(referred, &format!(".{source}.{field}"), |n| {
                names::dns_subdomain(n).map_err(|w| format!("name {w}"))
            })?;
        }
    }
    Ok(())
}

/// A label value, added to the Pod.
pub(crate) fn label_value(value: &str) -> Result<(), String> {
    if value.contains(UNKNOWN) {
        Ok(())
    } else {
        names::label_value(value).map_err(|w| format!("label value {w}"))
    }
}

fn resources(c: &Value) -> Result<(), Found> {
    for kind in ["limits", "requests"] {
        let quantities = c.get("resources").and_then(|r| r.get(kind)).and_then(Value::as_object);
        for (resource, quantity) in quantities.into_iter().flatten() {
            let at = format!(".resources.{kind}.{resource}");
            checked(quantity.as_str().unwrap_or_default(), &at, names::quantity)?;
        }
    }
    Ok(())
}

fn ports(port: &Value, at: &str) -> Result<(), Found> {
    let number = |field: &str| port.get(field).and_then(Value::as_i64);
    if let Some(p) = number("containerPort").filter(|p| !(1..=65535).contains(p)) {
        return found(&format!("{at}.containerPort"), format!("{p} is not a port (1 to 65535)"));
    }
    if let Some(p) = number("hostPort").filter(|p| !(0..=65535).contains(p)) {
        return found(&format!("{at}.hostPort"), format!("{p} is not a port (1 to 65535)"));
    }
    if let Some(protocol) = port.get("protocol").and_then(Value::as_str) {
        checked(protocol, &format!("{at}.protocol"), |p| {
            if ["TCP", "UDP", "SCTP"].contains(&p) {
                Ok(())
            } else {
                Err(format!("{p:?} is not TCP, UDP or SCTP"))
            }
        })?;
    }
    if let Some(name) = port.get("name").and_then(Value::as_str) {
        checked(name, &format!("{at}.name"), |n| names::port_name(n).map_err(|w| format!("port name {w}")))?;
    }
    Ok(())
}

/// Exactly one handler, a port that is a port, no negative numbers, and the thresholds the API
/// server insists on.
fn probe(p: &Value, which: &str) -> Result<(), Found> {
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|h| p.get(h).is_some_and(|v| !v.is_null()))
        .collect();
    match handlers.as_slice() {
        [] => return found("", "a probe needs one handler: exec, httpGet, tcpSocket or grpc".into()),
        [_] => {}
        many => return found("", format!("a probe takes one handler, not {}", many.join(" and "))),
    }
    for handler in ["httpGet", "tcpSocket"] {
        if let Some(port) = p.get(handler).and_then(|h| h.get("port")) {
            probe_port(port).map_err(|why| (format!(".{handler}.port"), why))?;
        }
    }
    for field in
        ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"]
    {
        if let Some(n) = p.get(field).and_then(Value::as_i64).filter(|n| *n < 0) {
            return found(&format!(".{field}"), format!("{n} is negative"));
        }
    }
    let success = p.get("successThreshold").and_then(Value::as_i64);
    if which != "readinessProbe" && success.is_some_and(|n| n != 1) {
        return found(".successThreshold", "must be 1 for a liveness or startup probe".into());
    }
    if which == "readinessProbe" && p.get("terminationGracePeriodSeconds").is_some_and(|v| !v.is_null()) {
        return found(".terminationGracePeriodSeconds", "a readiness probe takes none".into());
    }
    Ok(())
}

fn probe_port(port: &Value) -> Result<(), String> {
    match port {
        Value::Number(n) if n.as_i64().is_some_and(|p| (1..=65535).contains(&p)) => Ok(()),
        Value::String(name) if name.contains(UNKNOWN) => Ok(()),
        Value::String(name) => names::port_name(name).map_err(|w| format!("port name {w}")),
        other => Err(format!("{other} is not a port (1 to 65535) or a port name")),
    }
}

fn security_context(sc: &Value) -> Result<(), Found> {
    let flag = |field: &str| sc.get(field).and_then(Value::as_bool);
    if flag("allowPrivilegeEscalation") == Some(false) {
        if flag("privileged") == Some(true) {
            return found(
                ".securityContext",
                "privileged: true needs allowPrivilegeEscalation left out or true".into(),
            );
        }
        let added = sc.get("capabilities").and_then(|c| c.get("add")).and_then(Value::as_array);
        if added.into_iter().flatten().any(|c| matches!(c.as_str(), Some("SYS_ADMIN" | "CAP_SYS_ADMIN"))) {
            return found(
                ".securityContext",
                "adding SYS_ADMIN needs allowPrivilegeEscalation left out or true".into(),
            );
        }
    }
    for field in ["runAsUser", "runAsGroup"] {
        if let Some(id) = sc.get(field).and_then(Value::as_i64).filter(|id| !(0..=2_147_483_647).contains(id))
        {
            return found(
                &format!(".securityContext.{field}"),
                format!("{id} is not between 0 and 2147483647"),
            );
        }
    }
    Ok(())
}

/// `check` the text, unless it still holds a placeholder whose value is only known at review.
fn checked(text: &str, at: &str, check: impl Fn(&str) -> Result<(), String>) -> Result<(), Found> {
    if text.contains(UNKNOWN) {
        return Ok(());
    }
    check(text).map_err(|why| (at.to_owned(), why))
}

fn found(at: &str, why: String) -> Result<(), Found> {
    Err((at.to_owned(), why))
}

fn items<'v>(parent: &'v Value, field: &str) -> impl Iterator<Item = &'v Value> {
    parent.get(field).and_then(Value::as_array).into_iter().flatten()
}
