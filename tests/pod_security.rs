//! Pod Security: the level the engine gives a Pod, one row per check, and the guarantee that
//! injection never lowers it. tests/e2e_pod_security.py holds the levels to the API server's own.

mod common;

use common::*;
use serde_json::{Value, json};
use sidecar_injector::{Config, Level, review};

/// A Pod that passes restricted, each container carrying what it must.
fn restricted_pod() -> Value {
    json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": "nginx",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

/// RFC 7386 merge of `change` into `base`: `null` removes a field.
fn merged(mut base: Value, change: &Value) -> Value {
    json_patch::merge(&mut base, change);
    base
}

/// The Pod's level before and after injection, as `review --explain` reports it.
fn levels(pod: &Value, config: &Config) -> (Level, Level) {
    let body = serde_json::to_vec(&pod_review(pod, "shop")).unwrap();
    let security = review(&body, config).unwrap().pod_security.expect("a Pod CREATE has a level");
    (security.before, security.injected)
}

/// A configuration that changes nothing a check reads, so every Pod is planned and judged.
fn neutral() -> Config {
    config("labels: {team: web}\nskip: {hostNetwork: false, namespaces: []}\n")
}

/// One row: `change` merged into the restricted Pod gives `expected`.
fn level_row(change: Value, expected: Level) {
    let pod = merged(restricted_pod(), &change);
    assert_eq!(levels(&pod, &neutral()).0, expected, "{change}");
}

fn app(security: Value) -> Value {
    let mut container = restricted_pod()["spec"]["containers"][0].clone();
    json_patch::merge(&mut container, &json!({ "securityContext": security }));
    json!({"spec": {"containers": [container]}})
}

rows! { level_row;
    compliant_is_restricted: (json!({}), Level::Restricted),
    host_network: (json!({"spec": {"hostNetwork": true}}), Level::Privileged),
    host_pid: (json!({"spec": {"hostPID": true}}), Level::Privileged),
    host_ipc: (json!({"spec": {"hostIPC": true}}), Level::Privileged),
    privileged_container: (app(json!({"privileged": true})), Level::Privileged),
    capability_outside_baseline: (app(json!({"capabilities": {"add": ["NET_RAW"]}})), Level::Privileged),
    baseline_capability_is_not_restricted: (app(json!({"capabilities": {"add": ["CHOWN"]}})), Level::Baseline),
    net_bind_service_is_restricted: (app(json!({"capabilities": {"add": ["NET_BIND_SERVICE"]}})), Level::Restricted),
    no_drop_all: (app(json!({"capabilities": {"drop": ["NET_RAW"]}})), Level::Baseline),
    host_path_volume: (json!({"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}), Level::Privileged),
    nfs_volume_is_baseline: (json!({"spec": {"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}}), Level::Baseline),
    image_volume_is_restricted: (json!({"spec": {"volumes": [{"name": "i", "image": {"reference": "r"}}]}}), Level::Restricted),
    volume_without_source_is_an_empty_dir: (json!({"spec": {"volumes": [{"name": "e"}]}}), Level::Restricted),
    host_port: (json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "hostPort": 80}]}]}}), Level::Privileged),
    apparmor_field_unconfined: (app(json!({"appArmorProfile": {"type": "Unconfined"}})), Level::Privileged),
    apparmor_annotation_unconfined: (json!({"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}}), Level::Privileged),
    apparmor_annotation_localhost: (json!({"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "localhost/p"}}}), Level::Restricted),
    selinux_type: (app(json!({"seLinuxOptions": {"type": "spc_t"}})), Level::Privileged),
    selinux_user: (json!({"spec": {"securityContext": {"seLinuxOptions": {"user": "root"}}}}), Level::Privileged),
    selinux_container_engine_t: (app(json!({"seLinuxOptions": {"type": "container_engine_t"}})), Level::Restricted),
    proc_mount_unmasked: (app(json!({"procMount": "Unmasked"})), Level::Privileged),
    proc_mount_unmasked_in_a_user_namespace_is_baseline: (merged(app(json!({"procMount": "Unmasked"})), &json!({"spec": {"hostUsers": false}})), Level::Baseline),
    seccomp_unconfined: (app(json!({"seccompProfile": {"type": "Unconfined"}})), Level::Privileged),
    seccomp_unset_everywhere: (json!({"spec": {"securityContext": {"seccompProfile": null}}}), Level::Baseline),
    seccomp_on_the_container_alone: (merged(app(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}})), &json!({"spec": {"securityContext": {"seccompProfile": null}}})), Level::Restricted),
    unsafe_sysctl: (json!({"spec": {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}}), Level::Privileged),
    safe_sysctl_of_1_32: (json!({"spec": {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]}}}), Level::Restricted),
    host_process: (app(json!({"windowsOptions": {"hostProcess": true}})), Level::Privileged),
    probe_host: (json!({"spec": {"containers": [{"name": "app", "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}]}}), Level::Privileged),
    lifecycle_host: (json!({"spec": {"containers": [{"name": "app", "lifecycle": {"preStop": {"tcpSocket": {"host": "node", "port": 1}}}}]}}), Level::Privileged),
    privilege_escalation_unset: (app(json!({"allowPrivilegeEscalation": null})), Level::Baseline),
    run_as_non_root_unset: (json!({"spec": {"securityContext": {"runAsNonRoot": null}}}), Level::Baseline),
    run_as_non_root_false_on_the_pod: (json!({"spec": {"securityContext": {"runAsNonRoot": false}}}), Level::Baseline),
    run_as_non_root_on_each_container: (merged(app(json!({"runAsNonRoot": true})), &json!({"spec": {"securityContext": {"runAsNonRoot": null}}})), Level::Restricted),
    run_as_non_root_false_on_a_container: (app(json!({"runAsNonRoot": false})), Level::Baseline),
    user_namespace_needs_no_run_as_non_root: (json!({"spec": {"hostUsers": false, "securityContext": {"runAsNonRoot": null, "runAsUser": 0}}}), Level::Restricted),
    run_as_user_0_on_the_pod: (json!({"spec": {"securityContext": {"runAsUser": 0}}}), Level::Baseline),
    run_as_user_0_on_a_container: (app(json!({"runAsUser": 0})), Level::Baseline),
    init_containers_are_checked: (json!({"spec": {"initContainers": [{"name": "init", "image": "i"}]}}), Level::Baseline),
    ephemeral_containers_are_checked: (json!({"spec": {"ephemeralContainers": [{"name": "debug", "image": "i", "securityContext": {"privileged": true}}]}}), Level::Privileged),
    windows_needs_no_escalation_setting: (merged(app(json!({"allowPrivilegeEscalation": null, "capabilities": null})), &json!({"spec": {"os": {"name": "windows"}}})), Level::Restricted),
}

const SIDECAR: &str = "image: agent:1\n";

/// A profile `p` injected into every Pod, its one sidecar with `security` as its securityContext.
fn profile(security: &str, extra: &str) -> Config {
    config(&format!(
        "defaultProfiles: [p]\nprofiles:\n  p:\n{extra}    sidecars:\n    - name: agent\n      {SIDECAR}      securityContext: {security}\n"
    ))
}

fn sidecar_of(pod: &Value) -> &Value {
    &pod["spec"]["initContainers"][0]
}

/// Lowering the Pod is `onError`: `deny` refuses it naming the sidecar and the check.
#[test]
fn a_sidecar_that_lowers_a_restricted_pod_is_denied() {
    let config = profile("{allowPrivilegeEscalation: true}", "");
    let (response, _) = admit(&restricted_pod(), "shop", &config);
    assert!(!response.response.allowed);
    let message = response.response.status.unwrap().message;
    assert!(
        message.contains(r#"sidecar "agent" would lower the Pod from restricted to baseline: allowPrivilegeEscalation is not false"#),
        "{message}"
    );
}

#[test]
fn with_on_error_allow_the_pod_is_admitted_unchanged_with_the_warning() {
    let config = profile("{allowPrivilegeEscalation: true}", "    onError: allow\n");
    let (response, patched) = admit(&restricted_pod(), "shop", &config);
    assert!(response.response.allowed);
    assert_eq!(patched, restricted_pod(), "admitted unchanged");
    let warnings = response.response.warnings.join("\n");
    assert!(warnings.contains("would lower the Pod from restricted to baseline"), "{warnings}");
}

/// A baseline Pod stays baseline with the same sidecar: we never make things worse, nor demand better.
#[test]
fn a_sidecar_that_keeps_the_level_is_injected() {
    let config = profile("{allowPrivilegeEscalation: true}", "");
    let baseline = merged(restricted_pod(), &json!({"spec": {"securityContext": {"runAsNonRoot": null}}}));
    let (response, patched) = admit(&baseline, "shop", &config);
    assert!(response.response.allowed);
    assert_eq!(sidecar_of(&patched)["name"], "agent");
    assert_eq!(levels(&patched, &neutral()).0, Level::Baseline);
}

#[test]
fn a_privileged_sidecar_in_a_baseline_pod_is_denied() {
    let config = profile("{privileged: true}", "");
    let baseline = merged(restricted_pod(), &json!({"spec": {"securityContext": {"runAsNonRoot": null}}}));
    let (response, _) = admit(&baseline, "shop", &config);
    let message = response.response.status.unwrap().message;
    assert!(message.contains("from baseline to privileged: privileged is true"), "{message}");
}

#[test]
fn a_privileged_pod_takes_any_sidecar() {
    let config = profile("{privileged: true}", "");
    let privileged = merged(restricted_pod(), &json!({"spec": {"hostPID": true}}));
    assert!(admit(&privileged, "shop", &config).0.response.allowed);
}

/// Defaults fill what the template leaves unset and the Pod does not give: here everything.
#[test]
fn defaults_fill_what_a_restricted_pod_needs() {
    let config = profile("{readOnlyRootFilesystem: true}", "");
    let pod = merged(
        restricted_pod(),
        &json!({"spec": {"securityContext": null, "containers": [{"name": "app", "image": "nginx", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"}}}]}}),
    );
    let (response, patched) = admit(&pod, "shop", &config);
    assert!(response.response.allowed);
    let expected = json!({
        "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}
    });
    assert_eq!(sidecar_of(&patched)["securityContext"], expected);
    assert_eq!(levels(&patched, &neutral()).0, Level::Restricted);
}

/// What the Pod gives its containers (runAsNonRoot, seccomp) is inherited, not repeated.
#[test]
fn defaults_leave_what_the_pod_gives_to_inheritance() {
    let (_, patched) = admit(&restricted_pod(), "shop", &profile("{}", ""));
    let expected = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    assert_eq!(sidecar_of(&patched)["securityContext"], expected);
    assert_eq!(levels(&patched, &neutral()).0, Level::Restricted);
}

#[test]
fn an_explicit_value_is_kept_and_reported() {
    let (response, _) = admit(&restricted_pod(), "shop", &profile("{capabilities: {drop: [NET_RAW]}}", ""));
    let message = response.response.status.unwrap().message;
    assert!(message.contains("capabilities.drop does not include ALL"), "{message}");
}

#[test]
fn without_defaults_a_bare_sidecar_is_denied() {
    let config = profile("{}", "    restrictedDefaults: false\n");
    let (response, _) = admit(&restricted_pod(), "shop", &config);
    let message = response.response.status.unwrap().message;
    assert!(
        message.contains("allowPrivilegeEscalation is not false, capabilities.drop does not include ALL"),
        "{message}"
    );
}

#[test]
fn defaults_are_not_filled_in_a_baseline_pod() {
    let baseline = merged(
        restricted_pod(),
        &json!({"spec": {"hostUsers": null, "securityContext": {"runAsNonRoot": null}}}),
    );
    let (_, patched) = admit(&baseline, "shop", &profile("{readOnlyRootFilesystem: true}", ""));
    assert_eq!(sidecar_of(&patched)["securityContext"], json!({"readOnlyRootFilesystem": true}));
}

fn hash_of(pod: &Value, config: &Config) -> String {
    let (_, patched) = admit(pod, "shop", config);
    let status = patched["metadata"]["annotations"]["sidecar-injector.io/status"].as_str().unwrap();
    serde_json::from_str::<Value>(status).unwrap()["hash"].as_str().unwrap().to_owned()
}

/// The status hash covers what the defaults add: the same profile hashes apart in a Pod that got
/// them and one that did not, and turning them off changes it where they were filled.
#[test]
fn the_status_hash_changes_with_the_defaults() {
    let on = profile("{}", "");
    let off = profile("{}", "    restrictedDefaults: false\n    onError: allow\n");
    let baseline = merged(restricted_pod(), &json!({"spec": {"securityContext": {"runAsNonRoot": null}}}));
    assert_ne!(hash_of(&restricted_pod(), &on), hash_of(&baseline, &on));
    assert_eq!(hash_of(&baseline, &on), hash_of(&baseline, &off), "nothing filled, nothing changed");
    let with_own = profile("{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}", "");
    assert_ne!(hash_of(&restricted_pod(), &on), hash_of(&restricted_pod(), &with_own));
}

/// The API server allows an unmasked `/proc` only in a user namespace: a profile asking for one
/// elsewhere is refused, whatever the Pod's level, and injected where the Pod has `hostUsers: false`.
#[test]
fn an_unmasked_proc_outside_a_user_namespace_is_refused() {
    let config = profile("{procMount: Unmasked}", "");
    let privileged = merged(restricted_pod(), &json!({"spec": {"hostPID": true}}));
    let message = admit(&privileged, "shop", &config).0.response.status.unwrap().message;
    assert!(message.contains(r#"container "agent" sets procMount other than Default"#), "{message}");
    let user_namespace = merged(app(json!({"privileged": true})), &json!({"spec": {"hostUsers": false}}));
    let user_namespace = merged(restricted_pod(), &user_namespace);
    let (response, patched) = admit(&user_namespace, "shop", &config);
    assert!(
        response.response.allowed && sidecar_of(&patched)["name"] == "agent",
        "{:?}",
        response.response.status
    );
}

fn secrets_row(pod_has: Value, profiles: &str, expected: Value) {
    let pod = merged(restricted_pod(), &json!({"spec": {"imagePullSecrets": pod_has}}));
    let config = config(&format!("defaultProfiles: [a, b]\nprofiles:\n{profiles}"));
    let (response, patched) = admit(&pod, "shop", &config);
    assert!(response.response.allowed);
    assert_eq!(patched["spec"]["imagePullSecrets"], expected);
}

rows! { secrets_row;
    secrets_added_where_the_pod_has_none: (Value::Null, "  a: {imagePullSecrets: [{name: reg}]}\n  b: {}\n", json!([{"name": "reg"}])),
    secrets_the_pod_has_are_skipped: (json!([{"name": "reg"}]), "  a: {imagePullSecrets: [{name: reg}, {name: other}]}\n  b: {}\n", json!([{"name": "reg"}, {"name": "other"}])),
    a_secret_two_profiles_add_is_added_once: (Value::Null, "  a: {imagePullSecrets: [{name: reg}]}\n  b: {imagePullSecrets: [{name: reg}]}\n", json!([{"name": "reg"}])),
}

fn bad_config_row(yaml: &str, expected: &str) {
    let error = Config::from_yaml(yaml).expect_err(yaml).to_string();
    assert!(error.contains(expected), "{error}");
}

rows! { bad_config_row;
    pull_secret_name_not_a_secret_name: ("profiles: {p: {imagePullSecrets: [{name: Bad_Name}]}}", "profiles.p.imagePullSecrets[0].name: Secret name \"Bad_Name\""),
    pull_secret_listed_twice: ("profiles: {p: {imagePullSecrets: [{name: a}, {name: a}]}}", "profiles.p.imagePullSecrets[1].name: \"a\" is listed twice"),
    pull_secret_unknown_field: ("profiles: {p: {imagePullSecrets: [{name: a, namespace: b}]}}", "unknown field `namespace`"),
    pull_secret_as_a_string: ("profiles: {p: {imagePullSecrets: [reg]}}", "imagePullSecrets"),
    restricted_defaults_not_a_boolean: ("profiles: {p: {restrictedDefaults: sometimes}}", "restrictedDefaults"),
    config_wide_unconfined_apparmor: ("annotations: {container.apparmor.security.beta.kubernetes.io/app: unconfined}", "annotations.container.apparmor.security.beta.kubernetes.io/app: would lower Pods below baseline"),
}

/// `config check`'s view: the highest level each profile can keep, and why no higher.
#[test]
fn each_profile_reports_the_level_it_can_keep() {
    let config = config(
        "profiles:\n  debug-tools:\n    containers:\n    - {name: tcpdump, image: t, securityContext: {capabilities: {add: [NET_RAW]}}}\n  plain:\n    sidecars: [{name: s, image: s}]\n  bare:\n    restrictedDefaults: false\n    sidecars: [{name: s, image: s}]\n",
    );
    let levels: Vec<(String, Level, Vec<String>)> =
        config.pod_security_levels().map(|(p, l, why)| (p.to_owned(), l, why)).collect();
    assert_eq!(
        levels,
        [
            ("bare".into(), Level::Baseline, vec!["sidecar \"s\" allowPrivilegeEscalation is not false, capabilities.drop does not include ALL".into()]),
            ("debug-tools".into(), Level::Privileged, vec!["container \"tcpdump\" adds NET_RAW".into()]),
            ("plain".into(), Level::Restricted, vec![]),
        ]
    );
}

mod generated {
    //! The guarantee over generated Pods and profiles: whatever the Pod and the sidecar say, an
    //! admitted Pod is never at a lower level than it came in at, and a Pod refused for it is
    //! refused naming what would lower it.

    use super::*;
    use proptest::option;
    use proptest::prelude::*;
    use proptest::sample::{select, subsequence};

    const CAPABILITIES: &[&str] = &["ALL", "NET_BIND_SERVICE", "CHOWN", "NET_RAW", "SYS_ADMIN"];

    /// A securityContext of the fields the checks read, each set or left out.
    fn security_context() -> impl Strategy<Value = Value> {
        let flags = (option::of(any::<bool>()), option::of(any::<bool>()), option::of(any::<bool>()));
        let kinds = (
            option::of(select(&[0, 1000][..])),
            option::of(select(&["RuntimeDefault", "Localhost", "Unconfined"][..])),
            option::of(select(&["Default", "Unmasked"][..])),
            option::of(select(&["container_t", "spc_t"][..])),
        );
        let caps = (option::of(subsequence(CAPABILITIES, 0..3)), option::of(subsequence(CAPABILITIES, 0..3)));
        (flags, kinds, caps).prop_map(
            |((privileged, escalation, non_root), (user, seccomp, proc, selinux), (add, drop))| {
                let mut sc = serde_json::Map::new();
                let mut set = |key: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        sc.insert(key.into(), value);
                    }
                };
                set("privileged", privileged.map(Value::from));
                set("allowPrivilegeEscalation", escalation.map(Value::from));
                set("runAsNonRoot", non_root.map(Value::from));
                set("runAsUser", user.map(Value::from));
                set(
                    "seccompProfile",
                    seccomp
                        .map(|t| json!({"type": t, "localhostProfile": (t == "Localhost").then_some("p")})),
                );
                set("procMount", proc.map(Value::from));
                set("seLinuxOptions", selinux.map(|t| json!({"type": t})));
                if add.is_some() || drop.is_some() {
                    set("capabilities", Some(json!({"add": add, "drop": drop})));
                }
                Value::Object(sc)
            },
        )
    }

    fn pod() -> impl Strategy<Value = Value> {
        (security_context(), security_context(), any::<bool>(), option::of(any::<bool>()), any::<bool>()).prop_map(
            |(pod_sc, app_sc, host_pid, host_users, start_restricted)| {
                let mut pod = if start_restricted { restricted_pod() } else { json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "image": "i"}]}}) };
                pod["spec"]["securityContext"] = pod_sc;
                pod["spec"]["hostPID"] = json!(host_pid && !start_restricted);
                pod["spec"]["hostUsers"] = json!(host_users);
                json_patch::merge(&mut pod["spec"]["containers"][0]["securityContext"], &app_sc);
                pod
            },
        )
    }

    fn profile() -> impl Strategy<Value = Config> {
        (
            security_context(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            option::of(select(&["hostPath", "nfs", "emptyDir"][..])),
        )
            // A template the configuration check refuses (privileged with no escalation) is none.
            .prop_filter_map("a valid configuration", |(sc, native, allow, defaults, volume)| {
                let kind = if native { "sidecars" } else { "containers" };
                let volume = volume.map(|v| match v {
                    "hostPath" => json!({"name": "v", "hostPath": {"path": "/"}}),
                    "nfs" => json!({"name": "v", "nfs": {"server": "s", "path": "/"}}),
                    _ => json!({"name": "v", "emptyDir": {}}),
                });
                let profile = json!({
                    kind: [{"name": "agent", "image": "a", "securityContext": sc}],
                    "volumes": volume.into_iter().collect::<Vec<_>>(),
                    "onError": if allow { "allow" } else { "deny" },
                    "restrictedDefaults": defaults,
                });
                Config::from_yaml(&json!({"defaultProfiles": ["p"], "profiles": {"p": profile}}).to_string())
                    .ok()
            })
    }

    proptest! {
        #[test]
        fn injection_never_lowers_the_level(pod in pod(), config in profile()) {
            let (before, _) = levels(&pod, &neutral());
            let (response, patched) = admit(&pod, "shop", &config);
            let said = response.response.status.map(|s| s.message.into_owned()).unwrap_or_default()
                + &response.response.warnings.join(" ");
            if response.response.patch.is_some() {
                let (after, _) = levels(&patched, &neutral());
                prop_assert!(after >= before, "lowered from {before} to {after}:\n{pod}\n{patched}");
            } else {
                let lowering = said.contains(&format!("would lower the Pod from {before} to"));
                prop_assert!(lowering || said.contains("sets procMount other than Default"), "{said}");
            }
        }
    }
}
