//! Reading only the parts of a Pod that injection reads or patches, straight from the body.
//!
//! A Pod read whole as a `serde_json::Value` costs an allocation per key and string, most of a
//! review's time, and it grows with every env var of every container. The
//! decision reads a few fields, and every patch operation is an `add` under a few paths, so this
//! reads the object into a [`PodSkeleton`]: the names, labels and annotations injection reads,
//! borrowed from the body where they have no escapes, whether each list and map the patch may add
//! to is there, and how long each list is. Everything else is only checked to be well-formed JSON.
//!
//! A field of a shape Kubernetes never gives (an offline manifest can hold one) does not stop the
//! reading: the first one found is kept in [`Pod::malformed`], for `PodView` to refuse the Pod
//! with, naming the field.
//!
//! Why the patch check stays sound: an `add` operation only reads and writes along its path, and
//! every path our patches use is in the skeleton as in the Pod (see `patch::verify`). The Pod the
//! API server keeps is never rebuilt from this: fields we leave out here are not dropped there.
//!
//! An app container's `env` and `volumeMounts` are kept as their JSON text ([`Listed`]): only a
//! configuration that adds to the app containers reads their items (`PodView::read`). Most never
//! do, and serde_json skips a list whole for less than a visit to each of its items.
//!
//! `copyEnv` and `shareVolumeMounts` need more: the app containers' env vars with their values and
//! their mounts whole. Only a review whose profiles use them pays for that, with a second pass over
//! the body ([`app_values`]); keeping them always doubled the cost of a Pod with thousands of env
//! vars.

use std::borrow::Cow;

use serde::de::{DeserializeSeed, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

mod pod;
mod read;
mod security;
mod shapes;

use pod::{ContainerShape, PodShape, VolumeShape};
use read::{At, Got, Problems, Read};
use shapes::{Key, List};

/// The request's object, as far as injection reads it.
#[derive(Debug, Default)]
pub(crate) struct PodSkeleton<'b> {
    /// `None` when absent or `null`.
    pub metadata: Option<MetadataSkeleton<'b>>,
    pub spec: Option<SpecSkeleton<'b>>,
    /// The first field found that is not the shape Kubernetes gives it, as "spec.containers is not
    /// a list".
    pub malformed: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct MetadataSkeleton<'b> {
    pub name: Option<Cow<'b, str>>,
    pub generate_name: Option<Cow<'b, str>>,
    pub namespace: Option<Cow<'b, str>>,
    /// In the body's order; `None` when absent or `null`.
    pub labels: Option<Vec<(Cow<'b, str>, Cow<'b, str>)>>,
    pub annotations: Option<Vec<(Cow<'b, str>, Cow<'b, str>)>>,
}

#[derive(Debug, Default)]
pub(crate) struct SpecSkeleton<'b> {
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
    pub host_users: Option<bool>,
    /// `os.name`.
    pub os: Option<Cow<'b, str>>,
    pub service_account_name: Option<Cow<'b, str>>,
    /// Boxed, as a container's is: the skeleton is moved as it is read.
    pub security_context: Option<Box<SecurityContext<'b>>>,
    /// Each list `None` when absent or `null`.
    pub containers: Option<Vec<ContainerSkeleton<'b>>>,
    pub init_containers: Option<Vec<ContainerSkeleton<'b>>>,
    pub ephemeral_containers: Option<Vec<ContainerSkeleton<'b>>>,
    pub volumes: Option<Vec<VolumeSkeleton<'b>>>,
    /// The names of the Secrets in `imagePullSecrets`.
    pub image_pull_secrets: Option<Vec<Cow<'b, str>>>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct ContainerSkeleton<'b> {
    pub name: Cow<'b, str>,
    /// A Pod's container's `env` and `volumeMounts`, each checked to be a list; a template's are
    /// not read.
    pub env: Option<Listed<'b>>,
    pub volume_mounts: Option<Listed<'b>>,
    /// Boxed: most containers have none, and the skeleton stays small for those.
    pub security: Option<Box<SecurityContext<'b>>>,
    /// Whether any port sets a `hostPort` other than 0.
    pub host_port: bool,
    /// Whether a probe or lifecycle handler names a `host`.
    pub probe_host: bool,
}

/// A list kept as its JSON text, its items read only when asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listed<'b>(&'b RawValue);

impl<'b> Listed<'b> {
    /// Each item's `key` (an env var's `name`, a mount's `mountPath`), or the first item of
    /// another shape, named under `path` ("spec.containers[0].env").
    pub fn keys(self, key: &'static str, path: &str) -> Result<Vec<Cow<'b, str>>, String> {
        let text: &'b str = self.0.get();
        let found = Problems::default();
        let read = Read { shape: List(Key(key)), at: At::Field(&At::Top, path), found: &found };
        // The text was read as JSON once already, so this cannot fail on its syntax.
        let keys = read.deserialize(&mut serde_json::Deserializer::from_str(text));
        let keys = keys.map_err(|e| format!("{path}: {e}"))?.value().unwrap_or_default();
        found.0.into_inner().map_or(Ok(keys), Err)
    }
}

/// What Pod Security reads of a container's or the Pod's `securityContext`; the two share one
/// shape, and the checks read each only for its own fields. Each field is reduced as it is read to
/// what the checks ask of it: flags are smaller to hold than the strings, and every review reads
/// them.
#[derive(Debug, Default, Clone)]
pub(crate) struct SecurityContext<'b> {
    pub run_as_non_root: Option<bool>,
    pub run_as_user: Option<i64>,
    /// The `type` of `seccompProfile` and of `appArmorProfile`.
    pub seccomp: Option<ProfileType>,
    pub app_armor: Option<ProfileType>,
    pub se_linux: SeLinux,
    /// `windowsOptions.hostProcess`.
    pub host_process: Option<bool>,
    pub privileged: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    /// A `procMount` other than `Default`: an unmasked `/proc`.
    pub unmasked_proc: bool,
    pub capabilities: Capabilities<'b>,
    /// Whether a sysctl is one baseline does not allow (the Pod's only).
    pub unsafe_sysctl: bool,
}

/// A `securityContext` that sets nothing: what a container without one is judged by.
pub(crate) static NO_SECURITY_CONTEXT: SecurityContext<'static> = SecurityContext {
    run_as_non_root: None,
    run_as_user: None,
    seccomp: None,
    app_armor: None,
    se_linux: SeLinux { foreign_type: false, user_or_role: false },
    host_process: None,
    privileged: None,
    allow_privilege_escalation: None,
    unmasked_proc: false,
    capabilities: Capabilities { add: Vec::new(), drops_all: None },
    unsafe_sysctl: false,
};

/// A seccomp or AppArmor profile's `type`, as the checks tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProfileType {
    /// `RuntimeDefault` or `Localhost`.
    Confined,
    /// `Unconfined`, or a type the API server would refuse anyway.
    Other,
}

/// `seLinuxOptions`, as the checks ask of it; all `false` when it is unset.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SeLinux {
    /// A `type` other than the container types.
    pub foreign_type: bool,
    /// A `user` or `role` that is not empty.
    pub user_or_role: bool,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Capabilities<'b> {
    /// By name, for the message that names them.
    pub add: Vec<Cow<'b, str>>,
    /// Whether `drop` includes `ALL`; `None` when it is unset, which is not the same as an empty
    /// list a template says.
    pub drops_all: Option<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct VolumeSkeleton<'b> {
    pub name: Cow<'b, str>,
    /// Its source: the first field other than `name` that is not `null` (`configMap`,
    /// `hostPath` …); `None` when it has none.
    pub source: Option<Cow<'b, str>>,
}

/// The request's object: a Pod skeleton, or JSON that is not an object at all.
#[derive(Debug)]
pub(crate) enum Object<'b> {
    Pod(Box<PodSkeleton<'b>>),
    NotAnObject,
}

impl<'b> Object<'b> {
    pub fn metadata(&self) -> Option<&MetadataSkeleton<'b>> {
        match self {
            Object::Pod(pod) => pod.metadata.as_ref(),
            Object::NotAnObject => None,
        }
    }
}

/// For `#[serde(deserialize_with)]`: the request's object as a Pod skeleton; `null` is `None`.
pub(crate) fn object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Object<'de>>, D::Error> {
    let problems = Problems::default();
    let read = Read { shape: PodShape, at: At::Top, found: &problems };
    Ok(match read.deserialize(deserializer)? {
        Got::Absent => None,
        Got::Wrong => Some(Object::NotAnObject),
        Got::Value(mut pod) => {
            pod.malformed = problems.0.into_inner();
            Some(Object::Pod(Box::new(pod)))
        }
    })
}

/// A container template as the skeleton reads a Pod's containers, for Pod Security to judge what a
/// profile adds by the same reading as what the Pod has. Templates passed the Kubernetes types at
/// load, so nothing is the wrong shape.
pub(crate) fn container_of(template: &Value) -> ContainerSkeleton<'_> {
    let problems = Problems::default();
    let read = Read { shape: ContainerShape { lists: false }, at: At::Top, found: &problems };
    read.deserialize(template).ok().and_then(Got::value).unwrap_or_default()
}

/// A container template read once, at load, for every Pod it is added to unchanged.
pub(crate) fn owned_container(template: &Value) -> ContainerSkeleton<'static> {
    let problems = Problems::default();
    let read = Read { shape: ContainerShape { lists: false }, at: At::Top, found: &problems };
    // An owned value gives owned strings.
    read.deserialize(template.clone()).ok().and_then(Got::value).unwrap_or_default()
}

/// A volume template, as [`container_of`] reads a container.
pub(crate) fn volume_of(template: &Value) -> VolumeSkeleton<'_> {
    let problems = Problems::default();
    let read = Read { shape: VolumeShape, at: At::Top, found: &problems };
    read.deserialize(template).ok().and_then(Got::value).unwrap_or_default()
}

/// The app containers of the review's Pod with their env vars (name, value, valueFrom) and mounts,
/// in the Pod's order, as JSON; empty when the body has none to read (the first pass has refused
/// any body or Pod this could not read).
pub(crate) fn app_values(body: &[u8]) -> Vec<Value> {
    #[derive(Deserialize)]
    struct AppsReview {
        request: Option<AppsRequest>,
    }
    #[derive(Deserialize)]
    struct AppsRequest {
        object: Option<AppsObject>,
    }
    #[derive(Deserialize)]
    struct AppsObject {
        spec: Option<AppsSpec>,
    }
    #[derive(Deserialize)]
    struct AppsSpec {
        containers: Option<Vec<AppValues>>,
    }
    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct AppValues {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<Vec<AppEnvVar>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        volume_mounts: Option<Vec<Value>>,
    }
    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct AppEnvVar {
        name: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value_from: Option<Value>,
    }
    let read: Option<AppsReview> = serde_json::from_slice(body).ok();
    let containers = read.and_then(|r| r.request?.object?.spec?.containers).unwrap_or_default();
    containers.into_iter().map(|app| serde_json::to_value(app).expect("JSON values serialize")).collect()
}

/// `object` read as the skeleton of a Pod, for tests (the text is leaked).
#[cfg(test)]
pub(crate) fn skeleton(object: Value) -> PodSkeleton<'static> {
    let text: &'static str = Box::leak(object.to_string().into_boxed_str());
    match self::object(&mut serde_json::Deserializer::from_str(text)).unwrap() {
        Some(Object::Pod(pod)) => *pod,
        other => panic!("not a Pod: {other:?}"),
    }
}

#[cfg(test)]
mod tests;
