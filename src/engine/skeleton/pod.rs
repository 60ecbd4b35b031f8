//! The shapes of a Pod's parts: which fields of each object injection reads, and what each becomes
//! in the skeleton.

use std::borrow::Cow;

use serde::de::MapAccess;

use super::read::{
    AnyText, At, Boolean, Field, Got, INITIAL_ROOM, Integer, Key, List, Outcome, Problems, Read, Shape, Text,
    drain_map, object,
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
#[derive(Clone, Copy)]
struct SeLinuxShape;
#[derive(Clone, Copy)]
struct CapabilitiesShape;
/// Any object, read through: a volume's source, known to be there.
#[derive(Clone, Copy)]
struct Present;

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
                        map.next_value_seed(Read { shape: SecurityShape, at, found })?.value()
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
                    let security = map.next_value_seed(Read { shape: SecurityShape, at, found })?.value();
                    container.security = security.map(Box::new);
                }
                4 => {
                    let ports = Read { shape: List(Field("hostPort", Integer)), at, found };
                    let ports = map.next_value_seed(ports)?.value().unwrap_or_default();
                    container.host_port = ports.into_iter().any(|port| port.is_some_and(|p| p != 0));
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
    type Out = SecurityContext<'de>;
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
        object(map, at, &names, |sc: &mut SecurityContext<'de>, index, at, map| {
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
            let list =
                map.next_value_seed(Read { shape: List(Text), at, found })?.value().unwrap_or_default();
            *[&mut caps.add, &mut caps.drop][index] = list;
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

/// Every source a volume can name, as `VolumeSkeleton::source` gives it.
const VOLUME_SOURCES: [&str; 30] = [
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
];

impl<'de> Shape<'de> for VolumeShape {
    type Out = VolumeSkeleton<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        let mut names = [""; VOLUME_SOURCES.len() + 1];
        names[0] = "name";
        names[1..].copy_from_slice(&VOLUME_SOURCES);
        let mut name = None;
        let volume = object(map, at, &names, |volume: &mut VolumeSkeleton<'de>, index, at, map| {
            if index == 0 {
                name = map.next_value_seed(Read { shape: AnyText, at, found })?.value();
            } else if map.next_value_seed(Read { shape: Present, at, found })?.value().is_some() {
                volume.source = volume.source.or(Some(VOLUME_SOURCES[index - 1]));
            }
            Ok(())
        })?;
        Ok(volume.map(|mut volume| {
            match name {
                Some(name) => volume.name = name,
                None => found.report(|| format!("{at}.name is missing or not a string")),
            }
            volume
        }))
    }
}

impl<'de> Shape<'de> for Present {
    type Out = ();
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, _: &At, _: &Problems) -> Outcome<(), A::Error> {
        drain_map(map).map(Some)
    }
}
