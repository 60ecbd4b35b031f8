//! The shapes of a Pod's parts: which fields of each object injection reads, and what each becomes
//! in the skeleton.

use std::borrow::Cow;

use serde::de::MapAccess;

use super::read::{AnyText, At, Boolean, Got, INITIAL_ROOM, Key, List, Problems, Read, Shape, Text, fields};
use super::{Container, Metadata, Pod, Spec};

#[derive(Clone, Copy)]
pub(super) struct PodShape;

impl<'de> Shape<'de> for PodShape {
    type Out = Pod<'de>;
    const WRONG: Option<&'static str> = None; // the review says the object is not an object

    fn map<A: MapAccess<'de>>(
        self,
        map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Pod<'de>>, A::Error> {
        let mut pod = Pod::default();
        fields(map, &["metadata", "spec"], |index, map| {
            let field = At::Field(at, ["metadata", "spec"][index]);
            if index == 0 {
                pod.metadata =
                    map.next_value_seed(Read { shape: MetadataShape, at: field, problems })?.value();
            } else {
                pod.spec = map.next_value_seed(Read { shape: SpecShape, at: field, problems })?.value();
            }
            Ok(())
        })?;
        Ok(Some(pod))
    }
}

#[derive(Clone, Copy)]
struct MetadataShape;

impl<'de> Shape<'de> for MetadataShape {
    type Out = Metadata<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(
        self,
        map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Metadata<'de>>, A::Error> {
        const FIELDS: [&str; 5] = ["name", "generateName", "namespace", "labels", "annotations"];
        let mut metadata = Metadata::default();
        fields(map, &FIELDS, |index, map| {
            let at = At::Field(at, FIELDS[index]);
            let text = || Read { shape: AnyText, at, problems };
            let strings = || Read { shape: StringMap, at, problems };
            match index {
                0 => metadata.name = map.next_value_seed(text())?.value(),
                1 => metadata.generate_name = map.next_value_seed(text())?.value(),
                2 => metadata.namespace = map.next_value_seed(text())?.value(),
                3 => metadata.labels = map.next_value_seed(strings())?.value(),
                _ => metadata.annotations = map.next_value_seed(strings())?.value(),
            }
            Ok(())
        })?;
        Ok(Some(metadata))
    }
}

/// Labels or annotations: a map of strings.
#[derive(Clone, Copy)]
struct StringMap;

impl<'de> Shape<'de> for StringMap {
    type Out = Vec<(Cow<'de, str>, Cow<'de, str>)>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(
        self,
        mut map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Self::Out>, A::Error> {
        let mut pairs = Vec::with_capacity(INITIAL_ROOM);
        while let Some(key) = map.next_key_seed(Read { shape: AnyText, at: *at, problems })? {
            // serde_json only gives strings for keys.
            let key = key.value().unwrap_or_default();
            let at = At::Field(at, &key);
            match map.next_value_seed(Read { shape: Text, at, problems })? {
                Got::Value(value) => pairs.push((key, value)),
                Got::Absent => problems.report(|| format!("{at} is not a string")),
                Got::Wrong => {}
            }
        }
        Ok(Some(pairs))
    }
}

#[derive(Clone, Copy)]
struct SpecShape;

impl<'de> Shape<'de> for SpecShape {
    type Out = Spec<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(
        self,
        map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Spec<'de>>, A::Error> {
        const FIELDS: [&str; 6] = [
            "hostNetwork",
            "serviceAccountName",
            "containers",
            "initContainers",
            "ephemeralContainers",
            "volumes",
        ];
        let mut spec = Spec::default();
        fields(map, &FIELDS, |index, map| {
            let at = At::Field(at, FIELDS[index]);
            let names = || Read { shape: List(Key("name")), at, problems };
            match index {
                0 => {
                    spec.host_network =
                        map.next_value_seed(Read { shape: Boolean, at, problems })?.value() == Some(true)
                }
                1 => {
                    spec.service_account_name =
                        map.next_value_seed(Read { shape: Text, at, problems })?.value()
                }
                2 => {
                    spec.containers =
                        map.next_value_seed(Read { shape: List(ContainerShape), at, problems })?.value()
                }
                3 => spec.init_containers = map.next_value_seed(names())?.value(),
                4 => spec.ephemeral_containers = map.next_value_seed(names())?.value(),
                _ => spec.volumes = map.next_value_seed(names())?.value(),
            }
            Ok(())
        })?;
        Ok(Some(spec))
    }
}

#[derive(Clone, Copy)]
struct ContainerShape;

impl<'de> Shape<'de> for ContainerShape {
    type Out = Container<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(
        self,
        map: A,
        at: &At,
        problems: &Problems,
    ) -> Result<Option<Container<'de>>, A::Error> {
        const FIELDS: [&str; 3] = ["name", "env", "volumeMounts"];
        let (mut name, mut container) = (None, Container::default());
        fields(map, &FIELDS, |index, map| {
            let at = At::Field(at, FIELDS[index]);
            match index {
                0 => name = map.next_value_seed(Read { shape: AnyText, at, problems })?.value(),
                1 => {
                    container.env =
                        map.next_value_seed(Read { shape: List(Key("name")), at, problems })?.value()
                }
                _ => {
                    let paths = Read { shape: List(Key("mountPath")), at, problems };
                    container.volume_mounts = map.next_value_seed(paths)?.value();
                }
            }
            Ok(())
        })?;
        match name {
            Some(name) => container.name = name,
            None => problems.report(|| format!("{at}.name is missing or not a string")),
        }
        Ok(Some(container))
    }
}
