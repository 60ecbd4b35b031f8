//! The skeleton's reading, against what a Pod says.

use super::*;
use serde_json::json;

#[test]
fn keeps_what_injection_reads_and_list_lengths() {
    let pod = skeleton(json!({
        "apiVersion": "v1",
        "metadata": {"name": "a", "labels": {"x": "y"}, "managedFields": [{"big": true}]},
        "spec": {
            "containers": [
                {"name": "app", "image": "i", "env": [{"name": "A", "value": "secret"}], "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
                {"name": "two", "args": ["x"]}
            ],
            "volumes": [{"name": "v", "secret": {"secretName": "s"}}],
            "tolerations": [{"key": "k"}],
            "hostNetwork": true
        }
    }));
    assert_eq!(pod.malformed, None);
    let metadata = pod.metadata.unwrap();
    assert_eq!(metadata.name.as_deref(), Some("a"));
    assert_eq!(metadata.labels.unwrap(), [(Cow::Borrowed("x"), Cow::Borrowed("y"))]);
    assert!(metadata.annotations.is_none());
    let spec = pod.spec.unwrap();
    assert!(spec.host_network);
    let containers = spec.containers.unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!((containers[0].name.as_ref(), containers[1].name.as_ref()), ("app", "two"));
    let keys = |list: Option<Listed<'static>>, key| list.map(|l| l.keys(key, "list").unwrap());
    assert_eq!(keys(containers[0].env, "name"), Some(vec![Cow::Borrowed("A")]));
    assert_eq!(keys(containers[0].volume_mounts, "mountPath"), Some(vec![Cow::Borrowed("/v")]));
    assert!(containers[1].env.is_none());
    let volumes = spec.volumes.unwrap();
    assert_eq!((volumes[0].name.as_ref(), volumes[0].source.as_deref()), ("v", Some("secret")));
    assert!(spec.init_containers.is_none());
}

#[test]
fn names_the_first_field_of_the_wrong_shape() {
    let cases = [
        (json!({"metadata": "m"}), "metadata is not an object"),
        (json!({"spec": {"containers": {"name": "x"}}}), "spec.containers is not a list"),
        (json!({"spec": {"volumes": [5]}}), "spec.volumes[0] is not an object"),
        (json!({"spec": {"volumes": [{"name": 1}]}}), "spec.volumes[0].name is missing or not a string"),
        (json!({"spec": {"volumes": [{}]}}), "spec.volumes[0].name is missing or not a string"),
        (json!({"spec": {"containers": [null]}}), "spec.containers[0] is not an object"),
        (
            json!({"spec": {"containers": [{"env": []}]}}),
            "spec.containers[0].name is missing or not a string",
        ),
        (json!({"metadata": {"labels": {"a": null}}}), "metadata.labels.a is not a string"),
        (json!({"spec": {"hostNetwork": "yes"}}), "spec.hostNetwork is not a boolean"),
        (
            json!({"spec": {"securityContext": {"runAsUser": "0"}}}),
            "spec.securityContext.runAsUser is not an integer",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "securityContext": {"capabilities": {"add": "NET_RAW"}}}]}}),
            "spec.containers[0].securityContext.capabilities.add is not a list",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "ports": [{"hostPort": "80"}]}]}}),
            "spec.containers[0].ports[0].hostPort is not an integer",
        ),
        (json!({"spec": {"os": "linux"}}), "spec.os is not an object"),
        (
            json!({"spec": {"containers": [{"name": "a", "env": {"A": "1"}}]}}),
            "spec.containers[0].env is not a list",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "volumeMounts": "/v"}]}}),
            "spec.containers[0].volumeMounts is not a list",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "securityContext": {"capabilities": {"drop": ["KILL", 1]}}}]}}),
            "spec.containers[0].securityContext.capabilities.drop[1] is not a string",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "ports": [null]}]}}),
            "spec.containers[0].ports[0] is not an object",
        ),
        (
            json!({"spec": {"securityContext": {"seccompProfile": {"type": 1}}}}),
            "spec.securityContext.seccompProfile.type is not a string",
        ),
    ];
    for (object, message) in cases {
        assert_eq!(skeleton(object.clone()).malformed.as_deref(), Some(message), "{object}");
    }
}

#[test]
fn a_kept_list_names_its_first_item_of_another_shape() {
    let pod =
        skeleton(json!({"spec": {"containers": [{"name": "a", "env": [{"name": "A"}, {"value": "1"}, 5]}]}}));
    assert_eq!(pod.malformed, None, "the items are not read with the Pod");
    let env = pod.spec.unwrap().containers.unwrap()[0].env.unwrap();
    assert_eq!(
        env.keys("name", "spec.containers[0].env"),
        Err("spec.containers[0].env[1].name is missing or not a string".into())
    );
}

#[test]
fn keeps_what_pod_security_reads() {
    let pod = skeleton(json!({"spec": {
        "hostPID": true, "hostUsers": false, "os": {"name": "linux"},
        "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}, "sysctls": [{"name": "a", "value": "1"}],
                            "seLinuxOptions": {"type": "container_t", "role": "r"}},
        "initContainers": [{"name": "i", "securityContext": {"capabilities": {"add": ["NET_RAW"], "drop": ["KILL", "ALL"]}, "procMount": "Unmasked",
                                                            "appArmorProfile": {"type": "Unconfined"}},
                            "lifecycle": {"preStop": {"tcpSocket": {"host": "", "port": 1}}}}],
        "containers": [{"name": "a", "ports": [{"containerPort": 1, "hostPort": 0}, {"containerPort": 2, "hostPort": 8080}],
                        "readinessProbe": {"httpGet": {"host": "h", "port": 1}}}],
        "volumes": [{"name": "e"}, {"name": "n", "nfs": {"server": "s", "path": "/"}}]
    }}));
    assert_eq!(pod.malformed, None);
    let spec = pod.spec.unwrap();
    assert!(spec.host_pid && !spec.host_ipc);
    assert_eq!((spec.host_users, spec.os.as_deref()), (Some(false), Some("linux")));
    let sc = spec.security_context.unwrap();
    assert_eq!(
        (sc.run_as_user, sc.seccomp, sc.unsafe_sysctl),
        (Some(0), Some(ProfileType::Confined), true),
        "sysctl a is not one baseline allows"
    );
    assert!(!sc.se_linux.foreign_type && sc.se_linux.user_or_role);
    let init = &spec.init_containers.unwrap()[0];
    let init_sc = init.security.as_deref().unwrap();
    assert_eq!(init_sc.capabilities.add, ["NET_RAW"]);
    assert_eq!(init_sc.capabilities.drops_all, Some(true));
    assert_eq!(init_sc.app_armor, Some(ProfileType::Other));
    assert!(init_sc.unmasked_proc);
    assert!(!init.probe_host, "an empty host is no host");
    let app = &spec.containers.unwrap()[0];
    assert!(app.host_port);
    assert!(app.probe_host, "the readiness probe names h");
    assert_eq!(app.security.as_deref().map(|sc| sc.capabilities.drops_all), None);
    let sources: Vec<_> = spec.volumes.unwrap().iter().map(|v| v.source.clone()).collect();
    assert_eq!(sources, [None, Some(Cow::Borrowed("nfs"))]);
}

#[test]
fn escaped_strings_are_read_unescaped() {
    let pod = skeleton(json!({"metadata": {"labels": {"a\"b": "c\\d"}}}));
    assert_eq!(pod.metadata.unwrap().labels.unwrap(), [(Cow::Borrowed("a\"b"), Cow::Borrowed("c\\d"))]);
}
