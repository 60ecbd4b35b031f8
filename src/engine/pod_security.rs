//! The Pod Security level of a Pod, as the API server's Pod Security admission computes it for the
//! `latest` policy of Kubernetes 1.36, and what an injection would lower it by.
//!
//! Every check looks at one item at a time (the Pod's own fields, one container, one volume, one
//! annotation) given the Pod-level settings containers inherit ([`Context`]). That is what lets
//! injection be judged by its additions alone: the Pod came in at some level, so any check the
//! injected Pod fails at that level names something we added.
//!
//! The checks follow the published Pod Security Standards and the policy checks of
//! `k8s.io/pod-security-admission`, including what the page leaves out: `image` volumes are
//! restricted-safe, the `tcp_rmem`/`tcp_wmem` sysctls are safe, and a Pod with `hostUsers: false`
//! is exempt from the `runAsNonRoot`, `runAsUser` and (baseline only) `procMount` checks.
//! tests/e2e_pod_security.py holds this to the API server's own verdicts.

use std::borrow::Cow;
use std::fmt;

mod additions;

pub(crate) use additions::{profile_level, secure};

use super::skeleton::{
    ContainerSkeleton, NO_SECURITY_CONTEXT, ProfileType, SecurityContext, SpecSkeleton, VolumeSkeleton,
};

/// A Pod Security Standards level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Level {
    type Err = String;

    fn from_str(text: &str) -> Result<Level, String> {
        match text {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(format!("{text:?} is not a Pod Security level (privileged, baseline, restricted)")),
        }
    }
}

/// What containers inherit from the Pod, and the Pod-wide switches some checks depend on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Context<'a> {
    pub pod: Option<&'a SecurityContext<'a>>,
    /// `spec.os.name: windows`: exempt from the restricted escalation, seccomp and capability checks.
    pub windows: bool,
    /// `spec.hostUsers: false`: exempt from the `runAsNonRoot` and `runAsUser` checks, and from
    /// baseline's `procMount` check.
    pub user_namespace: bool,
}

impl<'a> Context<'a> {
    pub fn of(spec: &'a SpecSkeleton<'a>) -> Self {
        Context {
            pod: spec.security_context.as_deref(),
            windows: spec.os.as_deref() == Some("windows"),
            user_namespace: spec.host_users == Some(false),
        }
    }

    fn pod_non_root(&self) -> bool {
        self.pod.and_then(|p| p.run_as_non_root) == Some(true)
    }

    fn pod_seccomp_set(&self) -> bool {
        self.pod.and_then(|p| p.seccomp) == Some(ProfileType::Confined)
    }
}

/// What one item fails, each check said as "allowPrivilegeEscalation is not false".
pub(crate) type Findings = Vec<Cow<'static, str>>;

/// The level of a Pod: the highest whose checks it passes.
pub(crate) fn level(spec: &SpecSkeleton, annotations: &[(Cow<str>, Cow<str>)]) -> Level {
    let passes = |at: Level| {
        let mut failed = Findings::new();
        pod_findings(spec, at, &mut failed);
        let context = Context::of(spec);
        let containers =
            spec.init_containers.iter().chain(&spec.containers).chain(&spec.ephemeral_containers);
        for container in containers.flatten() {
            container_findings(container, &context, at, &mut failed);
        }
        for volume in spec.volumes.iter().flatten() {
            volume_findings(volume, at, &mut failed);
        }
        for (key, value) in annotations {
            annotation_findings(key, value, &mut failed);
        }
        failed.is_empty()
    };
    [Level::Restricted, Level::Baseline].into_iter().find(|at| passes(*at)).unwrap_or(Level::Privileged)
}

/// The checks of the Pod's own fields that `at` fails.
fn pod_findings(spec: &SpecSkeleton, at: Level, failed: &mut Findings) {
    if spec.host_network || spec.host_pid || spec.host_ipc {
        failed.push(Cow::Borrowed("uses a host namespace"));
    }
    let context = Context::of(spec);
    let Some(pod) = &spec.security_context else { return };
    shared_findings(pod, &context, at, failed);
    if pod.unsafe_sysctl {
        failed.push(Cow::Borrowed("sets a sysctl baseline does not allow"));
    }
    if at == Level::Restricted {
        if !context.user_namespace && pod.run_as_non_root == Some(false) {
            failed.push(Cow::Borrowed("runAsNonRoot is false"));
        }
        if !context.windows && pod.seccomp == Some(ProfileType::Other) {
            failed.push(Cow::Borrowed("seccompProfile is not RuntimeDefault or Localhost"));
        }
    }
}

/// The checks of what a Pod's and a container's security contexts share.
fn shared_findings(sc: &SecurityContext, context: &Context, at: Level, failed: &mut Findings) {
    if sc.host_process == Some(true) {
        failed.push(Cow::Borrowed("windowsOptions.hostProcess is true"));
    }
    if sc.app_armor == Some(ProfileType::Other) {
        failed.push(Cow::Borrowed("appArmorProfile is not RuntimeDefault or Localhost"));
    }
    if sc.se_linux.foreign_type {
        failed.push(Cow::Borrowed("seLinuxOptions.type is not a container type"));
    }
    if sc.se_linux.user_or_role {
        failed.push(Cow::Borrowed("seLinuxOptions sets a user or role"));
    }
    // Restricted's own seccomp check replaces baseline's (`pod_findings`, `container_findings`).
    if at == Level::Baseline && sc.seccomp == Some(ProfileType::Other) {
        failed.push(Cow::Borrowed("seccompProfile is Unconfined"));
    }
    if at == Level::Restricted && !context.user_namespace && sc.run_as_user == Some(0) {
        failed.push(Cow::Borrowed("runAsUser is 0"));
    }
}

/// The checks of one container, given what it inherits from the Pod, that `at` fails.
pub(crate) fn container_findings(
    container: &ContainerSkeleton,
    context: &Context,
    at: Level,
    failed: &mut Findings,
) {
    if container.host_port {
        failed.push(Cow::Borrowed("uses a hostPort"));
    }
    if container.probe_host {
        failed.push(Cow::Borrowed("a probe or lifecycle handler sets host"));
    }
    let sc = container.security.as_deref().unwrap_or(&NO_SECURITY_CONTEXT);
    shared_findings(sc, context, at, failed);
    if sc.privileged == Some(true) {
        failed.push(Cow::Borrowed("privileged is true"));
    }
    if sc.unmasked_proc && (at == Level::Restricted || !context.user_namespace) {
        failed.push(Cow::Borrowed("procMount is not Default"));
    }
    let added = &sc.capabilities.add;
    if at == Level::Baseline {
        let beyond: Vec<&str> =
            added.iter().map(|c| c.as_ref()).filter(|c| !BASELINE_CAPABILITIES.contains(c)).collect();
        if !beyond.is_empty() {
            failed.push(Cow::Owned(format!("adds {}", beyond.join(", "))));
        }
        return;
    }
    if !context.user_namespace {
        match sc.run_as_non_root {
            Some(false) => failed.push(Cow::Borrowed("runAsNonRoot is false")),
            None if !context.pod_non_root() => failed.push(Cow::Borrowed("runAsNonRoot is not true")),
            _ => {}
        }
    }
    if context.windows {
        return;
    }
    if sc.allow_privilege_escalation != Some(false) {
        failed.push(Cow::Borrowed("allowPrivilegeEscalation is not false"));
    }
    match sc.seccomp {
        Some(ProfileType::Other) => {
            failed.push(Cow::Borrowed("seccompProfile is not RuntimeDefault or Localhost"))
        }
        None if !context.pod_seccomp_set() => failed.push(Cow::Borrowed("seccompProfile is not set")),
        _ => {}
    }
    if sc.capabilities.drops_all != Some(true) {
        failed.push(Cow::Borrowed("capabilities.drop does not include ALL"));
    }
    let beyond: Vec<&str> = added.iter().map(|c| c.as_ref()).filter(|c| *c != "NET_BIND_SERVICE").collect();
    if !beyond.is_empty() {
        failed.push(Cow::Owned(format!("adds {} (only NET_BIND_SERVICE is allowed)", beyond.join(", "))));
    }
}

/// The checks of one volume that `at` fails.
pub(crate) fn volume_findings(volume: &VolumeSkeleton, at: Level, failed: &mut Findings) {
    // No source at all is an emptyDir: the API server defaults it before Pod Security looks.
    let source = volume.source.as_deref().unwrap_or("emptyDir");
    if source == "hostPath" {
        failed.push(Cow::Borrowed("is a hostPath volume"));
    } else if at == Level::Restricted && !RESTRICTED_VOLUMES.contains(&source) {
        failed.push(Cow::Borrowed("is not a volume type restricted allows"));
    }
}

/// The checks of one annotation (the AppArmor profile of a container, the old way).
pub(crate) fn annotation_findings(key: &str, value: &str, failed: &mut Findings) {
    if key.starts_with(APPARMOR_ANNOTATION)
        && !(value.is_empty() || value == "runtime/default" || value.starts_with("localhost/"))
    {
        failed.push(Cow::Borrowed("sets an AppArmor profile other than runtime/default or localhost/*"));
    }
}

impl ProfileType {
    /// What a seccomp or AppArmor profile's `type` is to the checks.
    pub(crate) fn of(kind: &str) -> ProfileType {
        match kind {
            "RuntimeDefault" | "Localhost" => ProfileType::Confined,
            _ => ProfileType::Other,
        }
    }
}

/// An SELinux `type` baseline allows; unset is the empty string.
pub(crate) fn container_selinux_type(kind: &str) -> bool {
    ["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"].contains(&kind)
}

pub(crate) fn safe_sysctl(name: &str) -> bool {
    SAFE_SYSCTLS.contains(&name)
}

const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

/// Capabilities baseline lets a container add.
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Sysctls baseline allows, as of policy version 1.32 (the newest change before 1.37).
const SAFE_SYSCTLS: [&str; 12] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Volume sources restricted allows.
const RESTRICTED_VOLUMES: [&str; 9] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];
