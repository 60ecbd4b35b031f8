//! The shapes of a Pod's parts: which fields of each object injection reads, and what each becomes
//! in the skeleton.

use std::borrow::Cow;

use serde::de::{IgnoredAny, MapAccess, SeqAccess};

use super::read::{
    AnyText, At, Boolean, Field, Got, INITIAL_ROOM, Integer, Key, List, Outcome, Problems, Read, Shape, Text,
    object,
};
use super::{
    Capabilities, ContainerSkeleton, MetadataSkeleton, PodSkeleton, SeLinux, SecurityContext, SpecSkeleton,
    VolumeSkeleton,
};

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
pub(super) struct ContainerShape;
#[derive(Clone, Copy)]
struct SecurityShape;
#[derive(Clone, Copy)]
pub(super) struct VolumeShape;
/// A probe or lifecycle handler, reduced to the hosts it names.
#[derive(Clone, Copy)]
struct HandlerShape;
#[derive(Clone, Copy)]
struct LifecycleShape;
/// `ports`, reduced to whether any sets a `hostPort` other than 0.
#[derive(Clone, Copy)]
struct HostPorts;
#[derive(Clone, Copy)]
struct SeLinuxShape;
#[derive(Clone, Copy)]
struct CapabilitiesShape;

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
            let containers = || Read { shape: List(ContainerShape), at, found };
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
                1 => {
                    container.env = map.next_value_seed(Read { shape: List(Key("name")), at, found })?.value()
                }
                2 => {
                    let paths = Read { shape: List(Key("mountPath")), at, found };
                    container.volume_mounts = map.next_value_seed(paths)?.value();
                }
                3 => {
                    container.security =
                        map.next_value_seed(Read { shape: SecurityShape, at, found })?.value();
                }
                4 => {
                    container.host_port =
                        map.next_value_seed(Read { shape: HostPorts, at, found })?.value() == Some(true)
                }
                5..=7 => {
                    let hosts = map.next_value_seed(Read { shape: HandlerShape, at, found })?.value();
                    container.probe_hosts.extend(hosts.into_iter().flatten());
                }
                _ => {
                    let hosts = map.next_value_seed(Read { shape: LifecycleShape, at, found })?.value();
                    container.probe_hosts.extend(hosts.into_iter().flatten());
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

impl<'de> Shape<'de> for SecurityShape {
    // Read straight into its box: the context is large, and moving it costs more than reading it.
    type Out = Box<SecurityContext<'de>>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let names = [
            "runAsNonRoot",
            "runAsUser",
            "seccompProfile",
            "appArmorProfile",
            "seLinuxOptions",
            "windowsOptions",
            "privileged",
            "allowPrivilegeEscalation",
            "procMount",
            "capabilities",
            "sysctls",
        ];
        object(map, at, &names, |sc: &mut Box<SecurityContext<'de>>, index, at, map| {
            let boolean = || Read { shape: Boolean, at, found };
            let kind = || Read { shape: Field("type", Text), at, found };
            match index {
                0 => sc.run_as_non_root = map.next_value_seed(boolean())?.value(),
                1 => sc.run_as_user = map.next_value_seed(Read { shape: Integer, at, found })?.value(),
                2 => sc.seccomp = map.next_value_seed(kind())?.value().flatten(),
                3 => sc.app_armor = map.next_value_seed(kind())?.value().flatten(),
                4 => sc.se_linux = map.next_value_seed(Read { shape: SeLinuxShape, at, found })?.value(),
                5 => {
                    let host_process = Read { shape: Field("hostProcess", Boolean), at, found };
                    sc.host_process = map.next_value_seed(host_process)?.value().flatten();
                }
                6 => sc.privileged = map.next_value_seed(boolean())?.value(),
                7 => sc.allow_privilege_escalation = map.next_value_seed(boolean())?.value(),
                8 => sc.proc_mount = map.next_value_seed(Read { shape: Text, at, found })?.value(),
                9 => {
                    sc.capabilities =
                        map.next_value_seed(Read { shape: CapabilitiesShape, at, found })?.value()
                }
                _ => {
                    let names = Read { shape: List(Key("name")), at, found };
                    sc.sysctls = map.next_value_seed(names)?.value().unwrap_or_default();
                }
            }
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for HostPorts {
    type Out = bool;
    const WRONG: Option<&'static str> = Some("is not a list");

    fn seq<A: SeqAccess<'de>>(self, mut seq: A, at: &At, found: &Problems) -> Outcome<bool, A::Error> {
        let (mut any, mut index) = (false, 0);
        loop {
            let port = Read { shape: Field("hostPort", Integer), at: At::Item(at, index), found };
            match seq.next_element_seed(port)? {
                None => return Ok(Some(any)),
                Some(got) => any |= got.value().flatten().is_some_and(|p| p != 0),
            }
            index += 1;
        }
    }
}

impl<'de> Shape<'de> for SeLinuxShape {
    type Out = SeLinux<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        object(map, at, &["type", "user", "role"], |se: &mut SeLinux<'de>, index, at, map| {
            let text = map.next_value_seed(Read { shape: Text, at, found })?.value();
            *[&mut se.kind, &mut se.user, &mut se.role][index] = text;
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for CapabilitiesShape {
    type Out = Capabilities<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        object(map, at, &["add", "drop"], |caps: &mut Capabilities<'de>, index, at, map| {
            let list = map.next_value_seed(Read { shape: List(Text), at, found })?.value();
            if index == 0 {
                caps.add = list.unwrap_or_default();
            } else {
                caps.drop = list;
            }
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for HandlerShape {
    type Out = Vec<Cow<'de, str>>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        object(map, at, &["httpGet", "tcpSocket"], |hosts: &mut Vec<Cow<'de, str>>, _, at, map| {
            let host = map.next_value_seed(Read { shape: Field("host", Text), at, found })?.value().flatten();
            hosts.extend(host.filter(|h| !h.is_empty()));
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for LifecycleShape {
    type Out = Vec<Cow<'de, str>>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        object(map, at, &["postStart", "preStop"], |hosts: &mut Vec<Cow<'de, str>>, _, at, map| {
            let handler = map.next_value_seed(Read { shape: HandlerShape, at, found })?.value();
            hosts.extend(handler.into_iter().flatten());
            Ok(())
        })
    }
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
