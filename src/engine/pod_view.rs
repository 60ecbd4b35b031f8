//! The few parts of a Pod the decision reads, checked for shape once, so that the decision itself
//! never has to ask whether a field is the type Kubernetes gives it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::pod_security::{self, Level};
use super::skeleton::{ContainerSkeleton, Listed, PodSkeleton, SpecSkeleton, VolumeSkeleton};

/// A field of the Pod that is not the shape Kubernetes gives it. The API server never sends such a
/// Pod; an offline manifest might. We refuse to patch what we cannot read rather than guess.
pub(crate) struct Malformed(pub String);

/// A labels or annotations map as the Pod has it, in the body's order.
type OwnEntries<'p> = [(Cow<'p, str>, Cow<'p, str>)];

/// The few parts of a Pod the decision reads, checked for shape once.
pub(crate) struct PodView<'p> {
    labels: &'p OwnEntries<'p>,
    annotations: &'p OwnEntries<'p>,
    pub host_network: bool,
    pub service_account: Option<&'p str>,
    /// The Pod's own (regular) containers.
    pub containers: &'p [ContainerSkeleton<'p>],
    init_containers: &'p [ContainerSkeleton<'p>],
    ephemeral_containers: &'p [ContainerSkeleton<'p>],
    volumes: &'p [VolumeSkeleton<'p>],
    pub image_pull_secrets: &'p [Cow<'p, str>],
    /// The spec as read, for Pod Security.
    pub spec: &'p SpecSkeleton<'p>,
    /// Each of `containers`' own env vars and mounts, when the configuration adds to them; empty
    /// otherwise.
    pub app_lists: Vec<AppLists<'p>>,
    /// Which of the maps and lists a patch may add to the Pod has (absent and `null` are the same):
    /// the patch adds to what is there and creates what is not.
    pub has: Has,
}

/// An app container's env var names and mount paths; `None` where it has no such list.
#[derive(Debug, Default)]
pub(crate) struct AppLists<'p> {
    pub env: Option<Vec<Cow<'p, str>>>,
    pub volume_mounts: Option<Vec<Cow<'p, str>>>,
}

impl<'p> AppLists<'p> {
    fn of(container: &ContainerSkeleton<'p>, index: usize) -> Result<Self, Malformed> {
        let read = |list: Option<Listed<'p>>, name: &str, key| {
            let path = format!("spec.containers[{index}].{name}");
            list.map(|list| list.keys(key, &path)).transpose().map_err(Malformed)
        };
        Ok(AppLists {
            env: read(container.env, "env", "name")?,
            volume_mounts: read(container.volume_mounts, "volumeMounts", "mountPath")?,
        })
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Has {
    pub metadata: bool,
    pub labels: bool,
    pub annotations: bool,
    pub init_containers: bool,
    pub containers: bool,
    pub volumes: bool,
    pub image_pull_secrets: bool,
}

impl<'p> PodView<'p> {
    /// `app_lists`: whether to read the app containers' env vars and mounts
    /// ([`Config::adds_to_app_containers`](crate::Config)).
    pub fn read(pod: &'p PodSkeleton<'p>, app_lists: bool) -> Result<Self, Malformed> {
        if let Some(what) = &pod.malformed {
            return Err(Malformed(what.clone()));
        }
        let Some(spec) = &pod.spec else {
            return Err(Malformed("it has no spec".into()));
        };
        let metadata = pod.metadata.as_ref();
        let labels = metadata.and_then(|m| m.labels.as_deref());
        let annotations = metadata.and_then(|m| m.annotations.as_deref());
        let containers = spec.containers.as_deref().unwrap_or_default();
        let app_lists = if app_lists {
            containers.iter().enumerate().map(|(i, c)| AppLists::of(c, i)).collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(PodView {
            labels: labels.unwrap_or_default(),
            annotations: annotations.unwrap_or_default(),
            host_network: spec.host_network,
            service_account: spec.service_account_name.as_deref().filter(|n| !n.is_empty()),
            containers,
            init_containers: spec.init_containers.as_deref().unwrap_or_default(),
            ephemeral_containers: spec.ephemeral_containers.as_deref().unwrap_or_default(),
            volumes: spec.volumes.as_deref().unwrap_or_default(),
            image_pull_secrets: spec.image_pull_secrets.as_deref().unwrap_or_default(),
            spec,
            app_lists,
            has: Has {
                metadata: metadata.is_some(),
                labels: labels.is_some(),
                annotations: annotations.is_some(),
                init_containers: spec.init_containers.is_some(),
                containers: spec.containers.is_some(),
                volumes: spec.volumes.is_some(),
                image_pull_secrets: spec.image_pull_secrets.is_some(),
            },
        })
    }

    /// A label's value; the last, when the body names the key twice (as a JSON parser reads it).
    pub fn label(&self, key: &str) -> Option<&'p str> {
        self.labels.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    pub fn annotation(&self, key: &str) -> Option<&'p str> {
        self.annotations.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    pub fn labels(&self) -> &'p OwnEntries<'p> {
        self.labels
    }

    pub fn annotations(&self) -> &'p OwnEntries<'p> {
        self.annotations
    }

    /// The labels as a map of strings, for label selectors.
    pub fn label_map(&self) -> BTreeMap<String, String> {
        self.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Whether any container has this name: regular, init or ephemeral, since they share one
    /// namespace.
    pub fn has_container(&self, name: &str) -> bool {
        self.containers.iter().any(|c| c.name == name)
            || self.init_containers.iter().chain(self.ephemeral_containers).any(|c| c.name == name)
    }

    pub fn has_volume(&self, name: &str) -> bool {
        self.volumes.iter().any(|v| v.name == name)
    }

    /// How many init containers and volumes the Pod has.
    pub fn init_container_count(&self) -> usize {
        self.init_containers.len()
    }

    pub fn volume_count(&self) -> usize {
        self.volumes.len()
    }

    /// The Pod's Pod Security level, as it came in.
    pub fn security_level(&self) -> Level {
        pod_security::level(self.spec, self.annotations)
    }
}
