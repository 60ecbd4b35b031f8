//! Loading a configuration: every mistake is caught at load time and named by its path.

use sidecar_injector::{Config, ConfigError};

fn error(yaml: &str) -> String {
    match Config::from_yaml(yaml) {
        Ok(_) => panic!("this configuration should be refused:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_builtin_configuration_is_valid_and_has_the_seed_label() {
    let config = Config::builtin();
    assert_eq!(config.profile_names().collect::<Vec<_>>(), ["example"]);
    let json =
        r#"{"labels": {"foo": "bar"}, "profiles": {"p": {"containers": [{"name": "c", "image": "i"}]}}}"#;
    assert!(Config::from_yaml(json).is_ok(), "JSON is accepted too");
    assert!(Config::from_yaml("").is_ok(), "an empty file means all defaults");
}

#[test]
fn a_misspelt_container_field_names_its_path() {
    let yaml = r#"
profiles:
  proxy:
    containers:
      - name: envoy
        image: envoy:1.31
        imagePullPolicyy: IfNotPresent
"#;
    assert_eq!(error(yaml), "profiles.proxy.containers[0].imagePullPolicyy: unknown field");
}

#[test]
fn errors_name_the_path_of_the_bad_field() {
    let cases = [
        ("injetByDefault: true", "injetByDefault: unknown field `injetByDefault`"),
        (
            "profiles: {p: {contaners: []}}",
            "profiles.p.contaners: unknown field `contaners`, expected one of `containers`",
        ),
        (
            "profiles: {p: {sidecars: [{name: s, image: i, resources: {limitz: {}}}]}}",
            "profiles.p.sidecars[0].resources.limitz: unknown field",
        ),
        (
            "profiles: {p: {volumes: [{name: v, emptyDir: {}, secert: {}}]}}",
            "profiles.p.volumes[0].secert: unknown field",
        ),
        (
            "profiles: {p: {appContainers: {env: [{name: A, valueFrm: {}}]}}}",
            "profiles.p.appContainers.env[0].valueFrm: unknown field",
        ),
        (
            "profiles: {p: {containers: [{name: c, image: i, ports: [{containerPort: http}]}]}}",
            "profiles.p.containers[0].ports[0].containerPort: invalid type",
        ),
        (
            "profiles: {p: {containers: [{image: i}]}}",
            "profiles.p.containers[0].name: container name \"\" must be 1 to 63",
        ),
        ("profiles: {p: {containers: [{name: c}]}}", "profiles.p.containers[0].image: an image is required"),
        (
            "profiles: {p: {containers: [{name: Bad_Name, image: i}]}}",
            "profiles.p.containers[0].name: container name",
        ),
        (
            "profiles: {p: {containers: [{name: c, image: i}], sidecars: [{name: c, image: j}]}}",
            "profiles.p.sidecars[0].name: \"c\" is used twice",
        ),
        (
            "profiles: {p: {sidecars: [{name: s, image: i, restartPolicy: Never}]}}",
            "profiles.p.sidecars[0].restartPolicy: a sidecar runs with Always",
        ),
        (
            "profiles: {p: {initContainers: [{name: s, image: i, restartPolicy: Always}]}}",
            "profiles.p.initContainers[0].restartPolicy: only sidecars",
        ),
        ("profiles: {p: {onError: ignore}}", "profiles.p.onError: unknown variant `ignore`"),
        ("profiles: {Bad: {}}", "profiles.Bad: profile name"),
        ("defaultProfiles: [missing]", "defaultProfiles[0]: no profile named \"missing\""),
        ("labels: {foo: true}", "labels.foo: invalid type: boolean"),
        ("labels: {\"bad key\": x}", "labels.bad key: key"),
        ("labels: {foo: \"not a valid value\"}", "labels.foo: label value"),
        (
            "annotations: {sidecar-injector.io/status: x}",
            "annotations.sidecar-injector.io/status: this key belongs to sidecar-injector",
        ),
        ("skip: {namespaces: [Kube_System]}", "skip.namespaces[0]: namespace name"),
        ("skip: {hostnetwork: false}", "skip.hostnetwork: unknown field `hostnetwork`"),
    ];
    for (yaml, expected) in cases {
        let message = error(yaml);
        assert!(
            message.starts_with(expected),
            "{yaml}\n  gave {message:?}\n  expected it to start with {expected:?}"
        );
    }
}

#[test]
fn syntax_errors_and_non_text_are_refused() {
    assert!(matches!(Config::from_yaml("labels: [unclosed"), Err(ConfigError::Syntax(_))));
    assert!(matches!(Config::from_slice(&[0xff, 0xfe]), Err(ConfigError::Syntax(_))));
    assert!(error("- just\n- a list\n").starts_with("(top level): a configuration is a map"));
}
