//! The shapes of a Pod's parts: which fields of each object injection reads, and what each becomes
//! in the skeleton.

use std::borrow::Cow;

use serde::de::MapAccess;

use super::read::{
    AnyText, At, Boolean, Got, INITIAL_ROOM, Key, List, Outcome, Problems, Read, Shape, Text, object,
};
use super::{ContainerSkeleton, MetadataSkeleton, PodSkeleton, SpecSkeleton};

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
#[derive(Clone, Copy)]
struct ContainerShape;

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
            "serviceAccountName",
            "containers",
            "initContainers",
            "ephemeralContainers",
            "volumes",
        ];
        object(map, at, &names, |spec: &mut SpecSkeleton<'de>, index, at, map| {
            let names = || Read { shape: List(Key("name")), at, found };
            match index {
                0 => {
                    spec.host_network =
                        map.next_value_seed(Read { shape: Boolean, at, found })?.value() == Some(true)
                }
                1 => {
                    spec.service_account_name = map.next_value_seed(Read { shape: Text, at, found })?.value()
                }
                2 => {
                    spec.containers =
                        map.next_value_seed(Read { shape: List(ContainerShape), at, found })?.value()
                }
                3 => spec.init_containers = map.next_value_seed(names())?.value(),
                4 => spec.ephemeral_containers = map.next_value_seed(names())?.value(),
                _ => spec.volumes = map.next_value_seed(names())?.value(),
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
        let names = ["name", "env", "volumeMounts"];
        let container = object(map, at, &names, |container: &mut ContainerSkeleton<'de>, index, at, map| {
            match index {
                0 => name = map.next_value_seed(Read { shape: AnyText, at, found })?.value(),
                1 => {
                    container.env = map.next_value_seed(Read { shape: List(Key("name")), at, found })?.value()
                }
                _ => {
                    let paths = Read { shape: List(Key("mountPath")), at, found };
                    container.volume_mounts = map.next_value_seed(paths)?.value();
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
