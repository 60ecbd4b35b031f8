//! Loading a configuration: every mistake is caught at load time and named by its path. Each row
//! of the table is a test case of its own.

mod common;

use common::rows;
use sidecar_injector::{Config, ConfigError};

fn error(yaml: &str) -> String {
    match Config::from_yaml(yaml) {
        Ok(_) => panic!("this configuration should be refused:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

/// One row: the configuration is refused, and the message starts with `expected`.
fn refused(yaml: &str, expected: &str) {
    let message = error(yaml);
    assert!(
        message.starts_with(expected),
        "{yaml}\n  gave {message:?}\n  expected it to start with {expected:?}"
    );
}

#[test]
fn the_builtin_configuration_is_valid_and_has_the_seed_label() {
    let config = Config::builtin();
    assert_eq!(config.profile_names().collect::<Vec<_>>(), ["example"]);
    // The 2018 article's label: a Pod the built-in configuration injects gains foo=bar.
    let pod = serde_json::json!({"metadata": {"name": "p", "labels": {"app": "p"}},
                                 "spec": {"containers": [{"name": "app", "image": "busybox"}]}});
    let reviewed = sidecar_injector::review_pod(&pod, "default", "u1", &config).unwrap();
    let patch: Vec<serde_json::Value> = serde_json::from_slice(&reviewed.patch.unwrap()).unwrap();
    let seed = serde_json::json!({"op": "add", "path": "/metadata/labels/foo", "value": "bar"});
    assert!(patch.contains(&seed), "{patch:?}");
    let json =
        r#"{"labels": {"foo": "bar"}, "profiles": {"p": {"containers": [{"name": "c", "image": "i"}]}}}"#;
    assert!(Config::from_yaml(json).is_ok(), "JSON is accepted too");
    assert!(Config::from_yaml("").is_ok(), "an empty file means all defaults");
}

const MISSPELT_CONTAINER_FIELD: &str = r#"
profiles:
  proxy:
    containers:
      - name: envoy
        image: envoy:1.31
        imagePullPolicyy: IfNotPresent
"#;

rows! { refused;
    misspelt_container_field: (MISSPELT_CONTAINER_FIELD, "profiles.proxy.containers[0].imagePullPolicyy: unknown field"),
    misspelt_top_level_field: ("injetByDefault: true", "injetByDefault: unknown field `injetByDefault`"),
    misspelt_profile_field: (
        "profiles: {p: {contaners: []}}",
        "profiles.p.contaners: unknown field `contaners`, expected one of `containers`",
    ),
    misspelt_resources_field: (
        "profiles: {p: {sidecars: [{name: s, image: i, resources: {limitz: {}}}]}}",
        "profiles.p.sidecars[0].resources.limitz: unknown field",
    ),
    misspelt_volume_field: (
        "profiles: {p: {volumes: [{name: v, emptyDir: {}, secert: {}}]}}",
        "profiles.p.volumes[0].secert: unknown field",
    ),
    misspelt_app_env_field: (
        "profiles: {p: {appContainers: {env: [{name: A, valueFrm: {}}]}}}",
        "profiles.p.appContainers.env[0].valueFrm: unknown field",
    ),
    port_of_the_wrong_type: (
        "profiles: {p: {containers: [{name: c, image: i, ports: [{containerPort: http}]}]}}",
        "profiles.p.containers[0].ports[0].containerPort: invalid type",
    ),
    container_without_a_name: (
        "profiles: {p: {containers: [{image: i}]}}",
        "profiles.p.containers[0].name: container name \"\" must be 1 to 63",
    ),
    container_without_an_image: (
        "profiles: {p: {containers: [{name: c}]}}",
        "profiles.p.containers[0].image: an image is required",
    ),
    container_name_not_a_dns_label: (
        "profiles: {p: {containers: [{name: Bad_Name, image: i}]}}",
        "profiles.p.containers[0].name: container name",
    ),
    container_name_twice_in_a_profile: (
        "profiles: {p: {containers: [{name: c, image: i}], sidecars: [{name: c, image: j}]}}",
        "profiles.p.sidecars[0].name: \"c\" is used twice",
    ),
    sidecar_with_another_restart_policy: (
        "profiles: {p: {sidecars: [{name: s, image: i, restartPolicy: Never}]}}",
        "profiles.p.sidecars[0].restartPolicy: a sidecar runs with Always",
    ),
    init_container_with_a_restart_policy: (
        "profiles: {p: {initContainers: [{name: s, image: i, restartPolicy: Always}]}}",
        "profiles.p.initContainers[0].restartPolicy: only sidecars",
    ),
    unknown_on_error: ("profiles: {p: {onError: ignore}}", "profiles.p.onError: unknown variant `ignore`"),
    profile_name_not_a_dns_label: ("profiles: {Bad: {}}", "profiles.Bad: profile name"),
    default_profile_that_does_not_exist: ("defaultProfiles: [missing]", "defaultProfiles[0]: no profile named \"missing\""),
    label_value_not_a_string: ("labels: {foo: true}", "labels.foo: invalid type: boolean"),
    label_key_not_a_qualified_name: ("labels: {\"bad key\": x}", "labels.bad key: key"),
    label_value_not_valid: ("labels: {foo: \"not a valid value\"}", "labels.foo: label value"),
    annotation_key_of_our_own: (
        "annotations: {sidecar-injector.io/status: x}",
        "annotations.sidecar-injector.io/status: this key belongs to sidecar-injector",
    ),
    skipped_namespace_not_a_dns_label: ("skip: {namespaces: [Kube_System]}", "skip.namespaces[0]: namespace name"),
    misspelt_skip_field: ("skip: {hostnetwork: false}", "skip.hostnetwork: unknown field `hostnetwork`"),
    a_list_instead_of_a_map: ("- just\n- a list\n", "(top level): a configuration is a map"),
    selector_with_an_unknown_operator: (
        "profiles: {p: {selector: {matchExpressions: [{key: a, operator: Equals, values: [b]}]}}}",
        "profiles.p.selector.matchExpressions[0].operator: \"Equals\" is not one of In, NotIn, Exists, DoesNotExist",
    ),
    selector_in_without_values: (
        "profiles: {p: {selector: {matchExpressions: [{key: a, operator: In}]}}}",
        "profiles.p.selector.matchExpressions[0].values: In and NotIn need values",
    ),
    selector_exists_with_values: (
        "profiles: {p: {selector: {matchExpressions: [{key: a, operator: Exists, values: [b]}]}}}",
        "profiles.p.selector.matchExpressions[0].values: Exists and DoesNotExist take no values",
    ),
    selector_key_not_a_qualified_name: (
        "profiles: {p: {selector: {matchExpressions: [{key: \"bad key\", operator: Exists}]}}}",
        "profiles.p.selector.matchExpressions[0].key: key",
    ),
    selector_value_not_a_label_value: (
        "profiles: {p: {selector: {matchLabels: {tier: \"not valid\"}}}}",
        "profiles.p.selector.matchLabels.tier: value",
    ),
    selector_expression_value_not_a_label_value: (
        "profiles: {p: {selector: {matchExpressions: [{key: a, operator: In, values: [\"not valid\"]}]}}}",
        "profiles.p.selector.matchExpressions[0].values[0]: value",
    ),
    misspelt_selector_field: ("profiles: {p: {selector: {matchLabel: {a: b}}}}", "profiles.p.selector.matchLabel: unknown field"),
    a_quantity_that_does_not_parse: (
        "profiles: {p: {sidecars: [{name: s, image: i, resources: {limits: {cpu: lots}}}]}}",
        "profiles.p.sidecars[0].resources.limits.cpu: \"lots\" is not a quantity",
    ),
    a_request_in_megabytes: (
        "profiles: {p: {containers: [{name: c, image: i, resources: {requests: {memory: 64MB}}}]}}",
        "profiles.p.containers[0].resources.requests.memory: \"64MB\" is not a quantity",
    ),
    a_container_port_out_of_range: (
        "profiles: {p: {containers: [{name: c, image: i, ports: [{containerPort: 70000}]}]}}",
        "profiles.p.containers[0].ports[0].containerPort: 70000 is not a port",
    ),
    a_container_port_of_zero: (
        "profiles: {p: {containers: [{name: c, image: i, ports: [{containerPort: 0}]}]}}",
        "profiles.p.containers[0].ports[0].containerPort: 0 is not a port",
    ),
    an_unknown_protocol: (
        "profiles: {p: {containers: [{name: c, image: i, ports: [{containerPort: 80, protocol: HTTP}]}]}}",
        "profiles.p.containers[0].ports[0].protocol: \"HTTP\" is not TCP, UDP or SCTP",
    ),
    a_port_name_too_long: (
        "profiles: {p: {containers: [{name: c, image: i, ports: [{containerPort: 80, name: a-very-long-port-name}]}]}}",
        "profiles.p.containers[0].ports[0].name: port name",
    ),
    an_env_var_name_with_equals: (
        "profiles: {p: {initContainers: [{name: c, image: i, env: [{name: \"A=B\", value: x}]}]}}",
        "profiles.p.initContainers[0].env[0].name: env var name",
    ),
    an_app_env_var_without_a_name: ("profiles: {p: {appContainers: {env: [{name: \"\"}]}}}", "profiles.p.appContainers.env[0].name: env var name"),
    profile_namespace_not_a_dns_label: ("profiles: {p: {namespaces: [Shop_1]}}", "profiles.p.namespaces[0]: namespace name"),
}

/// A profile whose sidecar's args read `%{v}`, with the parameter `v` declared as `parameter`.
fn with_parameter(parameter: &str) -> String {
    format!(
        "profiles: {{p: {{parameters: {{v: {parameter}}}, sidecars: [{{name: s, image: i, args: ['%{{v}}']}}]}}}}"
    )
}

// Parameters, placeholders and the values taken from the app.
rows! { refused;
    a_placeholder_naming_no_parameter: (
        "profiles: {p: {parameters: {logPath: {default: /l}}, sidecars: [{name: s, image: i, args: ['--path=%{logpath}', '%{logPath}']}]}}",
        "profiles.p.sidecars[0].args[0]: %{logpath} is not a declared parameter or a built-in (logPath, pod.namespace, pod.serviceAccountName, pod.appContainer)",
    ),
    a_placeholder_not_closed: (
        "profiles: {p: {containers: [{name: c, image: i, env: [{name: A, value: 'x%{y'}]}]}}",
        "profiles.p.containers[0].env[0].value: \"x%{y\": a placeholder %{ is not closed by }; write %%{ for a literal %{",
    ),
    a_placeholder_in_a_key: (
        "profiles: {p: {containers: [{name: c, image: i, resources: {limits: {'%{r}': 1}}}]}}",
        "profiles.p.containers[0].resources.limits: \"%{r}\": placeholders go in string values, never in keys",
    ),
    a_placeholder_in_a_container_name: (
        "profiles: {p: {containers: [{name: 'c-%{pod.appContainer}', image: i}]}}",
        "profiles.p.containers[0].name: container name",
    ),
    a_placeholder_in_an_env_var_name: (
        "profiles: {p: {parameters: {v: {default: A}}, containers: [{name: c, image: i, env: [{name: '%{v}', value: x}]}]}}",
        "profiles.p.containers[0].env[0].name: names take no placeholders",
    ),
    a_placeholder_in_a_volume_a_mount_names: (
        "profiles: {p: {parameters: {v: {default: a}}, appContainers: {volumeMounts: [{name: '%{v}', mountPath: /a}]}}}",
        "profiles.p.appContainers.volumeMounts[0].name: names take no placeholders",
    ),
    a_placeholder_in_a_top_level_label: ("labels: {a: '%{pod.namespace}'}", "labels.a: placeholders work in profiles only"),
    a_pattern_that_does_not_compile: (&with_parameter("{default: a, pattern: '[a-'}"), "profiles.p.parameters.v.pattern: not a regular expression"),
    a_default_failing_its_own_pattern: (&with_parameter("{default: abc, pattern: '[a-z]{2}'}"), "profiles.p.parameters.v.default: \"abc\" does not match the pattern \"[a-z]{2}\""),
    a_default_outside_its_enum: (&with_parameter("{default: loud, enum: [debug, info]}"), "profiles.p.parameters.v.default: \"loud\" is not one of debug, info"),
    an_empty_enum: (&with_parameter("{default: a, enum: []}"), "profiles.p.parameters.v.enum: an enum needs at least one value"),
    both_a_pattern_and_an_enum: (&with_parameter("{default: a, pattern: a, enum: [a]}"), "profiles.p.parameters.v: give either pattern or enum, not both"),
    neither_a_default_nor_required: (&with_parameter("{annotation: example.com/v}"), "profiles.p.parameters.v: give a default, or required: true"),
    required_with_a_default: (&with_parameter("{default: a, required: true, annotation: example.com/v}"), "profiles.p.parameters.v: a required parameter has no default"),
    required_with_nowhere_to_set_it: (&with_parameter("{required: true}"), "profiles.p.parameters.v: a required parameter needs an annotation or label"),
    a_parameter_annotation_not_a_qualified_name: (&with_parameter("{default: a, annotation: 'bad key'}"), "profiles.p.parameters.v.annotation: key"),
    a_parameter_name_with_a_dot: (
        "profiles: {p: {parameters: {pod.name: {default: a}}}}",
        "profiles.p.parameters.pod.name: parameter name \"pod.name\" must be a letter",
    ),
    a_parameter_read_from_a_label_the_configuration_adds: (
        "labels: {tier: web}\nprofiles: {p: {parameters: {v: {default: a, label: tier}}, sidecars: [{name: s, image: i, args: ['%{v}']}]}}",
        "profiles.p.parameters.v.label: tier is a label this configuration adds itself",
    ),
    a_parameter_read_from_an_annotation_a_profile_adds: (
        "profiles: {q: {annotations: {example.com/v: x}}, p: {parameters: {v: {default: a, annotation: example.com/v}}, sidecars: [{name: s, image: i, args: ['%{v}']}]}}",
        "profiles.p.parameters.v.annotation: example.com/v is an annotation this configuration adds itself",
    ),
    a_parameter_read_from_the_status_annotation: (
        &with_parameter("{default: a, annotation: sidecar-injector.io/status}"),
        "profiles.p.parameters.v.annotation: this key is written by sidecar-injector itself",
    ),
    a_parameter_no_template_uses: ("profiles: {p: {parameters: {v: {default: a}}}}", "profiles.p.parameters.v: declared, but no template uses it"),
    misspelt_parameter_field: (&with_parameter("{default: a, patern: a}"), "profiles.p.parameters.v.patern: unknown field"),
    a_quantity_whose_default_does_not_parse: (
        "profiles: {p: {parameters: {cpu: {default: lots}}, sidecars: [{name: s, image: i, resources: {limits: {cpu: '%{cpu}'}}}]}}",
        "profiles.p.sidecars[0].resources.limits.cpu: \"lots\" is not a quantity such as 100m, 64Mi or 1.5 (with the parameters' defaults)",
    ),
    a_container_port_from_a_placeholder: (
        "profiles: {p: {containers: [{name: c, image: i, ports: [{containerPort: '%{pod.namespace}'}]}]}}",
        "profiles.p.containers[0].ports[0].containerPort: invalid type: string",
    ),
    a_label_value_whose_default_is_no_label_value: (
        "profiles: {p: {parameters: {v: {default: 'a b'}}, labels: {tier: '%{v}'}}}",
        "profiles.p.labels.tier: label value \"a b\"",
    ),
    a_config_map_name_that_is_no_name: (
        "profiles: {p: {volumes: [{name: v, configMap: {name: Bad_Name}}]}}",
        "profiles.p.volumes[0].configMap.name: name \"Bad_Name\"",
    ),
    a_probe_without_a_handler: (
        "profiles: {p: {sidecars: [{name: s, image: i, readinessProbe: {periodSeconds: 5}}]}}",
        "profiles.p.sidecars[0].readinessProbe: a probe needs one handler",
    ),
    a_probe_with_two_handlers: (
        "profiles: {p: {containers: [{name: c, image: i, livenessProbe: {exec: {command: [x]}, tcpSocket: {port: 80}}}]}}",
        "profiles.p.containers[0].livenessProbe: a probe takes one handler, not exec and tcpSocket",
    ),
    a_probe_port_out_of_range: (
        "profiles: {p: {containers: [{name: c, image: i, readinessProbe: {httpGet: {port: 0}}}]}}",
        "profiles.p.containers[0].readinessProbe.httpGet.port: 0 is not a port",
    ),
    a_liveness_probe_needing_two_successes: (
        "profiles: {p: {containers: [{name: c, image: i, livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}}]}}",
        "profiles.p.containers[0].livenessProbe.successThreshold: must be 1",
    ),
    a_negative_probe_period: (
        "profiles: {p: {containers: [{name: c, image: i, startupProbe: {tcpSocket: {port: 80}, periodSeconds: -1}}]}}",
        "profiles.p.containers[0].startupProbe.periodSeconds: -1 is negative",
    ),
    a_plain_init_container_with_a_probe: (
        "profiles: {p: {initContainers: [{name: c, image: i, readinessProbe: {tcpSocket: {port: 80}}}]}}",
        "profiles.p.initContainers[0].readinessProbe: a plain init container takes no probes",
    ),
    privileged_without_privilege_escalation: (
        "profiles: {p: {containers: [{name: c, image: i, securityContext: {privileged: true, allowPrivilegeEscalation: false}}]}}",
        "profiles.p.containers[0].securityContext: privileged: true needs allowPrivilegeEscalation",
    ),
    a_negative_user_id: (
        "profiles: {p: {containers: [{name: c, image: i, securityContext: {runAsUser: -1}}]}}",
        "profiles.p.containers[0].securityContext.runAsUser: -1 is not between 0 and 2147483647",
    ),
    an_image_with_spaces: ("profiles: {p: {containers: [{name: c, image: ' i '}]}}", "profiles.p.containers[0].image: \" i \" has leading or trailing spaces"),
    copy_env_of_no_names: ("profiles: {p: {copyEnv: {names: []}, sidecars: [{name: s, image: i}]}}", "profiles.p.copyEnv.names: name at least one env var"),
    copy_env_of_a_bad_name: ("profiles: {p: {copyEnv: {names: ['A=B']}, sidecars: [{name: s, image: i}]}}", "profiles.p.copyEnv.names[0]: env var name"),
    copy_env_from_a_bad_container_name: ("profiles: {p: {copyEnv: {names: [A], from: Web}, sidecars: [{name: s, image: i}]}}", "profiles.p.copyEnv.from: container name"),
    copy_env_into_no_such_container: (
        "profiles: {p: {copyEnv: {names: [A], containers: [x]}, sidecars: [{name: s, image: i}]}}",
        "profiles.p.copyEnv.containers[0]: \"x\" is no container of this profile (it has s)",
    ),
    copy_env_of_a_var_the_template_sets: (
        "profiles: {p: {copyEnv: {names: [A]}, sidecars: [{name: s, image: i, env: [{name: A, value: x}]}]}}",
        "profiles.p.copyEnv.names[0]: container \"s\" sets A itself",
    ),
    share_volume_mounts_into_no_such_container: (
        "profiles: {p: {shareVolumeMounts: {containers: [x]}, sidecars: [{name: s, image: i}]}}",
        "profiles.p.shareVolumeMounts.containers[0]: \"x\" is no container",
    ),
    misspelt_share_volume_mounts_field: ("profiles: {p: {shareVolumeMounts: {readonly: true}}}", "profiles.p.shareVolumeMounts.readonly: unknown field"),
}

#[test]
fn syntax_errors_and_non_text_are_refused() {
    assert!(matches!(Config::from_yaml("labels: [unclosed"), Err(ConfigError::Syntax(_))));
    assert!(matches!(Config::from_slice(&[0xff, 0xfe]), Err(ConfigError::Syntax(_))));
}
