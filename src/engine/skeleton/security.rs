//! The shapes of what Pod Security reads of a Pod: the Pod's and each container's
//! `securityContext`, host ports, and the hosts probes and lifecycle handlers name.

use std::borrow::Cow;

use serde::de::MapAccess;

use super::read::{At, Outcome, Problems, Read, Shape, object};
use super::shapes::{Any, Boolean, Field, Integer, Key, List, Text, TextAs};
use super::{Capabilities, ProfileType, SeLinux, SecurityContext};
use crate::pod_security::{container_selinux_type, safe_sysctl};

#[derive(Clone, Copy)]
pub(super) struct SecurityShape;
/// A probe or lifecycle handler, reduced to whether it names a host.
#[derive(Clone, Copy)]
pub(super) struct HandlerShape;
#[derive(Clone, Copy)]
pub(super) struct LifecycleShape;
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
            let kind = || Read { shape: Field("type", TextAs(ProfileType::of)), at, found };
            match index {
                0 => sc.run_as_non_root = map.next_value_seed(boolean())?.value(),
                1 => sc.run_as_user = map.next_value_seed(Read { shape: Integer, at, found })?.value(),
                2 => sc.seccomp = map.next_value_seed(kind())?.value().flatten(),
                3 => sc.app_armor = map.next_value_seed(kind())?.value().flatten(),
                4 => {
                    let se_linux = Read { shape: SeLinuxShape, at, found };
                    sc.se_linux = map.next_value_seed(se_linux)?.value().unwrap_or_default();
                }
                5 => {
                    let host_process = Read { shape: Field("hostProcess", Boolean), at, found };
                    sc.host_process = map.next_value_seed(host_process)?.value().flatten();
                }
                6 => sc.privileged = map.next_value_seed(boolean())?.value(),
                7 => sc.allow_privilege_escalation = map.next_value_seed(boolean())?.value(),
                8 => {
                    let unmasked = Read { shape: TextAs(|mount: &str| mount != "Default"), at, found };
                    sc.unmasked_proc = map.next_value_seed(unmasked)?.value() == Some(true);
                }
                9 => {
                    let capabilities = Read { shape: CapabilitiesShape, at, found };
                    sc.capabilities = map.next_value_seed(capabilities)?.value().unwrap_or_default();
                }
                _ => {
                    let unsafe_names =
                        Read { shape: Any(Key("name"), |name: &Cow<str>| !safe_sysctl(name)), at, found };
                    sc.unsafe_sysctl = map.next_value_seed(unsafe_names)?.value() == Some(true);
                }
            }
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for SeLinuxShape {
    type Out = SeLinux;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        object(map, at, &["type", "user", "role"], |se: &mut SeLinux, index, at, map| {
            let text = map.next_value_seed(Read { shape: Text, at, found })?.value().unwrap_or_default();
            if index == 0 {
                se.foreign_type = !container_selinux_type(&text);
            } else {
                se.user_or_role |= !text.is_empty();
            }
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for CapabilitiesShape {
    type Out = Capabilities<'de>;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        object(map, at, &["add", "drop"], |caps: &mut Capabilities<'de>, index, at, map| {
            if index == 0 {
                caps.add =
                    map.next_value_seed(Read { shape: List(Text), at, found })?.value().unwrap_or_default();
            } else {
                let all = Read { shape: Any(Text, |name: &Cow<str>| name == "ALL"), at, found };
                caps.drops_all = map.next_value_seed(all)?.value();
            }
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for HandlerShape {
    type Out = bool;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        object(map, at, &["httpGet", "tcpSocket"], |named: &mut bool, _, at, map| {
            let host = Read { shape: Field("host", TextAs(|host: &str| !host.is_empty())), at, found };
            *named |= map.next_value_seed(host)?.value().flatten() == Some(true);
            Ok(())
        })
    }
}

impl<'de> Shape<'de> for LifecycleShape {
    type Out = bool;
    const WRONG: Option<&'static str> = Some("is not an object");

    fn map<A: MapAccess<'de>>(self, map: A, at: &At, found: &Problems) -> Outcome<Self::Out, A::Error> {
        object(map, at, &["postStart", "preStop"], |named: &mut bool, _, at, map| {
            *named |= map.next_value_seed(Read { shape: HandlerShape, at, found })?.value() == Some(true);
            Ok(())
        })
    }
}

/// `ports`, reduced to whether any sets a `hostPort` other than 0.
pub(super) const HOST_PORTS: Any<Field<Integer>, Option<i64>> =
    Any(Field("hostPort", Integer), |port| port.is_some_and(|p| p != 0));
