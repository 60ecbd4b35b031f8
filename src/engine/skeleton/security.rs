//! The shapes of what Pod Security reads of a Pod: the Pod's and each container's
//! `securityContext`, host ports, and the hosts probes and lifecycle handlers name.

use std::borrow::Cow;

use serde::de::{MapAccess, SeqAccess};

use super::read::{At, Boolean, Field, Integer, Key, List, Outcome, Problems, Read, Shape, Text, object};
use super::{Capabilities, SeLinux, SecurityContext};

#[derive(Clone, Copy)]
pub(super) struct SecurityShape;
/// A probe or lifecycle handler, reduced to the hosts it names.
#[derive(Clone, Copy)]
pub(super) struct HandlerShape;
#[derive(Clone, Copy)]
pub(super) struct LifecycleShape;
/// `ports`, reduced to whether any sets a `hostPort` other than 0.
#[derive(Clone, Copy)]
pub(super) struct HostPorts;
#[derive(Clone, Copy)]
struct SeLinuxShape;
#[derive(Clone, Copy)]
struct CapabilitiesShape;

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
