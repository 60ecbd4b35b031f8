//! The shapes of a Pod's parts: which fields of each object injection reads, and what each becomes
//! in the skeleton.

use std::borrow::Cow;

use serde::de::{IgnoredAny, MapAccess};
use serde_json::value::RawValue;

use super::read::{At, Got, INITIAL_ROOM, Outcome, Problems, Read, Shape, object};
use super::security::{HOST_PORTS, HandlerShape, LifecycleShape, SecurityShape};
use super::shapes::{AnyText, Boolean, Field, Key, List, Text};
use super::{ContainerSkeleton, Listed, MetadataSkeleton, PodSkeleton, SpecSkeleton, VolumeSkeleton};

// The shapes of the parts of a Pod injection reads, each an object of known fields but
// `StringMap`, labels or annotations.
#[derive(Clone, Copy)]
pub(super) struct PodShape;
#[derive(Clone, Copy)]
struct MetadataShape;
/// Labels or annotations: a map of strings.
#[derive(Clone, Copy)]
struct StringMap;
#[derive(Clone, Copy)]
struct SpecShape;
/// `lists`: whether `env` and `volumeMounts` are kept ([`Listed`]); a template read from a
/// `Value` has no JSON text to keep them as, and nothing reads them.
#[derive(Clone, Copy)]
pub(super) struct ContainerShape {
    pub lists: bool,
}
#[derive(Clone, Copy)]
pub(super) struct VolumeShape;

impl<'de> Shape<'de> for PodShape {
    type Out = PodSkeleton<'de>;
    const WRONG: Option<&'static str> = None; // the review says the object is not an object

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        object(map, at, &["metadata", "spec"], |pod: &mut PodSkeleton<'de>, index, at, map| {
            if index == 0 {
                pod.metadata = map.next_value_seed(Read { shape: MetadataShape, at, found })?.value();
            } else {
                pod.spec = map.next_value_seed(Read { shape: SpecShape, at, found })?.value();
            }
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for MetadataShape {
    type Out = MetadataSkeleton<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let names = ["name", "generateName", "namespace", "labels", "annotations"];
        object(map, at, &names, |metadata: &mut MetadataSkeleton<'de>, index, at, map| {
            let text = || Read { shape: AnyText, at, found };
            let strings = || Read { shape: StringMap, at, found };
            match index {
                0 => metadata.name = map.next_value_seed(text())?.value(),
                1 => metadata.generate_name = map.next_value_seed(text())?.value(),
                2 => metadata.namespace = map.next_value_seed(text())?.value(),
                3 => metadata.labels = map.next_value_seed(strings())?.value(),
                _ => metadata.annotations = map.next_value_seed(strings())?.value(),
            }
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for StringMap {
    type Out = Vec<(Cow<'de, str>, Cow<'de, str>)>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, mut map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let mut pairs = Vec::with_capacity(INITIAL_ROOM);
        while let Some(key) = map.next_key_seed(Read { shape: AnyText, at: *at, found })? {
            // serde_json only gives strings for keys.
            let key = key.value().unwrap_or_default();
            let at = At::Field(at, &key);
            match map.next_value_seed(Read { shape: Text, at, found })? {
                Got::Value(value) => pairs.push((key, value)),
                Got::Absent => found.report(|| format!("{at} is not a string")),
                Got::Wrong => {}
            }
        }
        Ok(Some(pairs))
    }
}

impl<'de> Shape<'de> for SpecShape {
    type Out = SpecSkeleton<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let names = [
            "hostNetwork",
            "hostPID",
            "hostIPC",
            "hostUsers",
            "os",
            "serviceAccountName",
            "securityContext",
            "containers",
            "initContainers",
            "ephemeralContainers",
            "volumes",
            "imagePullSecrets",
        ];
        object(map, at, &names, |spec: &mut SpecSkeleton<'de>, index, at, map| {
            let boolean = || Read { shape: Boolean, at, found };
            let containers = || Read { shape: List(ContainerShape { lists: true }), at, found };
            match index {
                0 => spec.host_network = map.next_value_seed(boolean())?.value() == Some(true),
                1 => spec.host_pid = map.next_value_seed(boolean())?.value() == Some(true),
                2 => spec.host_ipc = map.next_value_seed(boolean())?.value() == Some(true),
                3 => spec.host_users = map.next_value_seed(boolean())?.value(),
                4 => {
                    spec.os =
                        map.next_value_seed(Read { shape: Field("name", Text), at, found })?.value().flatten()
                }
                5 => {
                    spec.service_account_name = map.next_value_seed(Read { shape: Text, at, found })?.value()
                }
                6 => {
                    spec.security_context =
                        map.next_value_seed(Read { shape: SecurityShape, at, found })?.value();
                }
                7 => spec.containers = map.next_value_seed(containers())?.value(),
                8 => spec.init_containers = map.next_value_seed(containers())?.value(),
                9 => spec.ephemeral_containers = map.next_value_seed(containers())?.value(),
                10 => {
                    spec.volumes = map.next_value_seed(Read { shape: List(VolumeShape), at, found })?.value()
                }
                _ => {
                    let names = Read { shape: List(Key("name")), at, found };
                    spec.image_pull_secrets = map.next_value_seed(names)?.value();
                }
            }
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for ContainerShape {
    type Out = ContainerSkeleton<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let mut name = None;
        let names = [
            "name",
            "env",
            "volumeMounts",
            "securityContext",
            "ports",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "lifecycle",
        ];
        let container = object(map, at, &names, |container: &mut ContainerSkeleton<'de>, index, at, map| {
            match index {
                0 => name = map.next_value_seed(Read { shape: AnyText, at, found })?.value(),
                1 if self.lists => container.env = listed(map, &at, found)?,
                2 if self.lists => container.volume_mounts = listed(map, &at, found)?,
                1 | 2 => map.next_value::<IgnoredAny>().map(drop)?,
                3 => {
                    container.security =
                        map.next_value_seed(Read { shape: SecurityShape, at, found })?.value();
                }
                4 => {
                    container.host_port =
                        map.next_value_seed(Read { shape: HOST_PORTS, at, found })?.value() == Some(true)
                }
                5..=7 => {
                    let host = map.next_value_seed(Read { shape: HandlerShape, at, found })?.value();
                    container.probe_host |= host == Some(true);
                }
                _ => {
                    let host = map.next_value_seed(Read { shape: LifecycleShape, at, found })?.value();
                    container.probe_host |= host == Some(true);
                }
            }
            Ok(())
        })?;
        // The name is required: read beside the rest, then checked.
        Ok(container.map(|mut container| {
            match name {
                Some(name) => container.name = name,
                None => found.report(|| format!("{at}.name is missing or not a string")),
            }
            container
        }))
    }
}

/// A list kept as its text, its items skipped by serde_json as any value it is not asked to read.
fn listed<'de, A: MapAccess<'de>>(
    map: &mut A,
    at: &At,
    found: &Problems,
) -> Result<Option<Listed<'de>>, A::Error> {
    Ok(match map.next_value::<Option<&'de RawValue>>()? {
        Some(list) if list.get().starts_with('[') => Some(Listed(list)),
        Some(_) => {
            found.report(|| format!("{at} is not a list"));
            None
        }
        None => None,
    })
}

impl<'de> Shape<'de> for VolumeShape {
    type Out = VolumeSkeleton<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    // Not `object`: a volume's every other field is a source, so the key itself is what is kept.
    fn map<A: MapAccess<'de>>(self, mut map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let mut volume = VolumeSkeleton::default();
        let mut name = None;
        while let Some(key) = map.next_key_seed(Read { shape: AnyText, at: *at, found })? {
            // serde_json only gives strings for keys.
            let key = key.value().unwrap_or_default();
            let at = At::Field(at, &key);
            if key == "name" {
                name = map.next_value_seed(Read { shape: AnyText, at, found })?.value();
            } else if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                // serde_json skips an ignored value whole, without a visit per key.
                volume.source = volume.source.or(Some(key));
            }
        }
        match name {
            Some(name) => volume.name = name,
            None => found.report(|| format!("{at}.name is missing or not a string")),
        }
        Ok(Some(volume))
    }
}
