//! Pods and profiles built from the fuzzer's bytes around Pod Security: every field a check reads,
//! on the Pod and its containers and on the profile's sidecar, each drawn from the values that
//! decide a level (and sometimes anything), so that the fuzzer spends its time on levels.

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};
use sidecar_injector::Config;

/// A string field's value: the ones a check tells apart, or anything.
#[derive(Arbitrary, Debug)]
pub enum Word {
    RuntimeDefault,
    Localhost,
    Unconfined,
    Default,
    Unmasked,
    ContainerT,
    SpcT,
    Empty,
    Other(String),
}

impl Word {
    fn text(&self) -> String {
        match self {
            Word::RuntimeDefault => "RuntimeDefault".into(),
            Word::Localhost => "Localhost".into(),
            Word::Unconfined => "Unconfined".into(),
            Word::Default => "Default".into(),
            Word::Unmasked => "Unmasked".into(),
            Word::ContainerT => "container_t".into(),
            Word::SpcT => "spc_t".into(),
            Word::Empty => String::new(),
            Word::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub enum Capability {
    All,
    NetBindService,
    Chown,
    NetRaw,
    Other(String),
}

impl Capability {
    fn text(&self) -> String {
        match self {
            Capability::All => "ALL".into(),
            Capability::NetBindService => "NET_BIND_SERVICE".into(),
            Capability::Chown => "CHOWN".into(),
            Capability::NetRaw => "NET_RAW".into(),
            Capability::Other(s) => s.clone(),
        }
    }
}

/// A securityContext: each field absent or one of the values that matter.
#[derive(Arbitrary, Debug)]
pub struct SecurityContext {
    privileged: Option<bool>,
    allow_privilege_escalation: Option<bool>,
    run_as_non_root: Option<bool>,
    run_as_user: Option<i64>,
    seccomp: Option<Word>,
    app_armor: Option<Word>,
    se_linux: Option<(Option<Word>, Option<Word>)>,
    proc_mount: Option<Word>,
    host_process: Option<bool>,
    add: Option<Vec<Capability>>,
    drop: Option<Vec<Capability>>,
    sysctls: Option<Vec<Word>>,
}

impl SecurityContext {
    fn json(&self) -> Value {
        let mut sc = Map::new();
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                sc.insert(key.into(), value);
            }
        };
        set("privileged", self.privileged.map(Value::from));
        set("allowPrivilegeEscalation", self.allow_privilege_escalation.map(Value::from));
        set("runAsNonRoot", self.run_as_non_root.map(Value::from));
        set("runAsUser", self.run_as_user.map(|u| json!(u % 3 * 500)));
        set("seccompProfile", self.seccomp.as_ref().map(|t| json!({"type": t.text()})));
        set("appArmorProfile", self.app_armor.as_ref().map(|t| json!({"type": t.text()})));
        set("seLinuxOptions", self.se_linux.as_ref().map(|(kind, user)| {
            json!({"type": kind.as_ref().map(Word::text), "user": user.as_ref().map(Word::text)})
        }));
        set("procMount", self.proc_mount.as_ref().map(|m| json!(m.text())));
        set("windowsOptions", self.host_process.map(|h| json!({"hostProcess": h})));
        let caps = |list: &Option<Vec<Capability>>| {
            list.as_ref().map(|l| l.iter().map(Capability::text).collect::<Vec<_>>())
        };
        if self.add.is_some() || self.drop.is_some() {
            set("capabilities", Some(json!({"add": caps(&self.add), "drop": caps(&self.drop)})));
        }
        set(
            "sysctls",
            self.sysctls
                .as_ref()
                .map(|names| names.iter().map(|n| json!({"name": n.text(), "value": "1"})).collect()),
        );
        Value::Object(sc)
    }
}

#[derive(Arbitrary, Debug)]
pub struct Container {
    security: Option<SecurityContext>,
    host_port: Option<u16>,
    probe_host: Option<Word>,
}

impl Container {
    fn json(&self, name: &str) -> Value {
        let mut container = json!({"name": name, "image": "registry.example/i:1"});
        if let Some(sc) = &self.security {
            container["securityContext"] = sc.json();
        }
        if let Some(port) = self.host_port {
            container["ports"] = json!([{"containerPort": 8080, "hostPort": port % 3 * 8080}]);
        }
        if let Some(host) = &self.probe_host {
            container["readinessProbe"] = json!({"httpGet": {"port": 8080, "host": host.text()}});
        }
        container
    }
}

#[derive(Arbitrary, Debug)]
pub enum Volume {
    EmptyDir,
    NoSource,
    HostPath,
    Nfs,
    Image,
}

impl Volume {
    fn json(&self, name: &str) -> Value {
        match self {
            Volume::EmptyDir => json!({"name": name, "emptyDir": {}}),
            Volume::NoSource => json!({"name": name}),
            Volume::HostPath => json!({"name": name, "hostPath": {"path": "/"}}),
            Volume::Nfs => json!({"name": name, "nfs": {"server": "s", "path": "/"}}),
            Volume::Image => json!({"name": name, "image": {"reference": "r"}}),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct Case {
    pod_security: Option<SecurityContext>,
    host_namespaces: (bool, bool, bool),
    host_users: Option<bool>,
    windows: bool,
    app: Container,
    init: Option<Container>,
    volume: Option<Volume>,
    app_armor_annotation: Option<Word>,
    sidecar: Container,
    native: bool,
    sidecar_volume: Option<Volume>,
    sidecar_annotation: Option<Word>,
    allow: bool,
    defaults: bool,
}

const APPARMOR: &str = "container.apparmor.security.beta.kubernetes.io/";

impl Case {
    /// The profile's configuration and the review's bytes; `None` when the configuration is refused
    /// (after checking that its error has a message).
    pub fn review(&self) -> Option<(Config, Vec<u8>)> {
        let mut sidecar = self.sidecar.json("agent");
        if self.native {
            sidecar["restartPolicy"] = json!("Always");
        }
        let annotations: Map<String, Value> =
            self.sidecar_annotation.iter().map(|w| (format!("{APPARMOR}agent"), json!(w.text()))).collect();
        let profile = json!({
            "initContainers": if self.native { vec![sidecar.clone()] } else { vec![] },
            "containers": if self.native { vec![] } else { vec![sidecar] },
            "volumes": self.sidecar_volume.iter().map(|v| v.json("agent-volume")).collect::<Vec<_>>(),
            "annotations": annotations,
            "onError": if self.allow { "allow" } else { "deny" },
            "restrictedDefaults": self.defaults,
        });
        let config =
            json!({"defaultProfiles": ["p"], "profiles": {"p": profile}, "skip": {"hostNetwork": false}});
        let config = match Config::from_value(config) {
            Ok(config) => config,
            Err(error) => {
                assert!(!error.to_string().is_empty());
                return None;
            }
        };
        let (host_network, host_pid, host_ipc) = self.host_namespaces;
        let mut spec = json!({
            "hostNetwork": host_network, "hostPID": host_pid, "hostIPC": host_ipc, "hostUsers": self.host_users,
            "containers": [self.app.json("app")],
            "initContainers": self.init.iter().map(|c| c.json("init")).collect::<Vec<_>>(),
            "volumes": self.volume.iter().map(|v| v.json("data")).collect::<Vec<_>>(),
        });
        if let Some(sc) = &self.pod_security {
            spec["securityContext"] = sc.json();
        }
        if self.windows {
            spec["os"] = json!({"name": "windows"});
        }
        let annotations: Map<String, Value> =
            self.app_armor_annotation.iter().map(|w| (format!("{APPARMOR}app"), json!(w.text()))).collect();
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "0f0e0d0c-0000-4000-8000-000000000002",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "shop",
                "operation": "CREATE",
                "object": {"metadata": {"name": "p", "annotations": annotations}, "spec": spec},
            }
        });
        Some((config, serde_json::to_vec(&review).expect("serialisable")))
    }
}
