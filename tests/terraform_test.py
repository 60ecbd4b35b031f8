#!/usr/bin/env python3
"""The Terraform module, offline: no provider can be downloaded here, so there is no plan. Its HCL
is parsed with python-hcl2 and checked, one line per check:

- against the providers' schemas: every argument and nested block of every resource and data
  source, every required argument, and every attribute an expression reads. The schemas come from
  npm's prebuilt cdktf bindings (hashicorp/aws 6.25.0, kubernetes 2.38.0, random 3.7.2), whose
  declarations name each argument as Terraform spells it (--schemas, fetched by .ci/run). The
  Terraform registry itself cannot be reached from here;
- against the program: the webhook url is the Lambda's route and the token, the function's
  environment names exactly the variables src/lambda/cold_start.rs reads, each pinned to its
  parameter's version;
- the permissions with their conditions, the IAM statements, the outputs' sensitivity;
- the variables' validations, each bad value its own row, by Terraform itself (`terraform
  console` on a copy of variables.tf);
- the token rotation: the module's own expressions, evaluated by `terraform console` over six
  steps, keep the token the webhook uses accepted at every step;
- the registration against deploy-incluster's.

    $VENV_HCL/bin/python tests/terraform_test.py --schemas DIR
    $VENV_HCL/bin/python tests/terraform_test.py --render-webhook URL   (the object, as JSON)

Needs python-hcl2, pyyaml and terraform."""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import hcl2
import yaml

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
failures = []

# Arguments newer than the schemas npm has, with the provider version that added them.
NEWER = {("aws_lambda_permission", "invoked_via_function_url"): "hashicorp/aws 6.28 (versions.tf)"}


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else ": " + str(detail)))
    if not ok:
        failures.append(what)


def load(name):
    with open(TERRAFORM / name) as f:
        return hcl2.load(f)


def unquote(key):
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


def literal(value, variables):
    """A python-hcl2 value as plain data: quoted strings unquoted, ${var.x} replaced by its default."""
    if isinstance(value, str):
        match = re.fullmatch(r"\$\{var\.(\w+)\}", value)
        if match:
            return literal(variables[match.group(1)]["default"], variables)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return json.loads(value)
        return value
    if isinstance(value, list):
        return [literal(v, variables) for v in value]
    if isinstance(value, dict):
        return {literal(k, variables): literal(v, variables) for k, v in value.items() if not k.startswith("__")}
    return value


def block(blocks):
    """The single block python-hcl2 wraps in a list."""
    assert isinstance(blocks, list) and len(blocks) == 1, blocks
    return blocks[0]


def module():
    """(variables, resources, data sources, locals) of the module, keyed by (type, name)."""
    variables = {unquote(n): body for entry in load("variables.tf")["variable"] for n, body in entry.items()}
    main_tf = load("main.tf")

    def named(section):
        return {(unquote(kind), unquote(name)): body for entry in main_tf.get(section, [])
                for kind, bodies in entry.items() for name, body in bodies.items()}
    locals_ = {k: v for entry in main_tf["locals"] for k, v in entry.items()}
    return variables, named("resource"), named("data"), locals_


# --- the providers' schemas -------------------------------------------------------------------------

def snake(camel):
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


class Schema:
    """One resource or data source, from its cdktf declarations: arguments (with their nested block
    types and whether required) per interface, and the attributes its class can read."""

    def __init__(self, path):
        text = path.read_text()
        self.interfaces = {}
        for m in re.finditer(r"^export interface (\w+)[^{]*\{(.*?)^\}", text, re.M | re.S):
            arguments = {}
            for a in re.finditer(r"#(\w+) \w+#\w+\}\s*\*/\s*readonly (\w+)(\??): ([^;]+);", m.group(2)):
                arguments[a.group(1)] = (re.match(r"\w*", a.group(4)).group(0), a.group(3) != "?")
            self.interfaces[m.group(1)] = arguments
        self.top = next(name for name in self.interfaces if re.search(
            r"export interface %s extends cdktf\.TerraformMetaArguments" % name, text))
        self.attributes = {snake(g) for g in re.findall(r"get (\w+)\(\):", text)}

    def problems(self, body, interface=None, path=""):
        """What in `body` the schema does not have, and what it requires that `body` lacks."""
        arguments = self.interfaces[interface or self.top]
        found, given = [], set()
        for key, value in body.items():
            key = unquote(key)
            if key in ("depends_on", "for_each", "count", "lifecycle", "provider") or key.startswith("__"):
                continue
            entries = [(unquote(k), v["content"][0]) for d in value for k, v in d.items()] if key == "dynamic" \
                else [(key, b) for b in value] if isinstance(value, list) and value and isinstance(value[0], dict) \
                else [(key, None)]
            for name, nested in entries:
                given.add(name)
                if name not in arguments:
                    found.append(f"{path}{name}")
                elif nested is not None and arguments[name][0] in self.interfaces:
                    found += self.problems(nested, arguments[name][0], f"{path}{name}.")
        found += [f"{path}{name} (required)" for name, (_, required) in arguments.items()
                  if required and name not in given]
        return found


def schema(schemas, kind, data=False):
    provider, rest = kind.split("_", 1)
    folder = ("data-" + kind if data else rest).replace("_", "-")
    return Schema(schemas / provider / "package" / "lib" / folder / "index.d.ts")


def check_schemas(schemas, resources, data_sources):
    versions = {p: json.loads((schemas / p / "package" / "package.json").read_text())["cdktf"]["provider"]["version"]
                for p in ("aws", "kubernetes", "random")}
    print("schemas: " + ", ".join(f"hashicorp/{p} {v}" for p, v in versions.items()))
    loaded = {}
    for (kind, name), body in list(resources.items()) + [(("data." + k, n), b) for (k, n), b in data_sources.items()]:
        is_data = kind.startswith("data.")
        bare = kind.removeprefix("data.")
        loaded[kind] = loaded.get(kind) or schema(schemas, bare, is_data)
        found = [p for p in loaded[kind].problems(body) if (bare, p) not in NEWER]
        newer = [f"{p} ({NEWER[(bare, p)]})" for p in loaded[kind].problems(body) if (bare, p) in NEWER]
        check(f"{kind}.{name}: every argument and block is in the provider's schema, none required is missing"
              + (f"; newer than the schema: {', '.join(newer)}" if newer else ""), not found, found)
    # Every attribute an expression reads exists on what it reads.
    text = "\n".join((TERRAFORM / f).read_text() for f in ("main.tf", "outputs.tf"))
    wrong = []
    for is_data, kind, attribute in re.findall(
            r"\b(data\.)?((?:aws|kubernetes|random)_\w+)\.\w+(?:\[[^\]]*\])?\.(\w+)", text):
        key = ("data." if is_data else "") + kind
        loaded[key] = loaded.get(key) or schema(schemas, kind, bool(is_data))
        if attribute not in loaded[key].attributes:
            wrong.append(f"{key}.{attribute}")
    check("every attribute an expression reads is one its resource or data source has", not wrong, wrong)


# --- the module against the program ------------------------------------------------------------------

def rendered_webhook(resources, variables, url):
    """The MutatingWebhookConfiguration Terraform creates, with `url` for local.webhook_url."""
    resource = resources[("kubernetes_mutating_webhook_configuration_v1", "this")]
    webhook = block(resource["webhook"])
    rule = literal(block(webhook["rule"]), variables)
    expressions = literal(block(webhook["object_selector"]), variables)["match_expressions"]
    metadata = literal(block(resource["metadata"]), variables)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": variables["name"]["default"] if metadata["name"] == "${var.name}" else metadata["name"],
                     "labels": metadata["labels"]},
        "webhooks": [{
            "name": literal(webhook["name"], variables),
            "clientConfig": {"url": url},
            "rules": [{"apiGroups": rule["api_groups"], "apiVersions": rule["api_versions"],
                       "operations": rule["operations"], "resources": rule["resources"], "scope": rule["scope"]}],
            "namespaceSelector": {"matchLabels": literal(block(webhook["namespace_selector"]), variables)["match_labels"]},
            "objectSelector": {"matchExpressions": [{"key": e["key"], "operator": e["operator"], "values": e["values"]}
                                                    for e in expressions]},
            "sideEffects": literal(webhook["side_effects"], variables),
            "admissionReviewVersions": literal(webhook["admission_review_versions"], variables),
            "failurePolicy": literal(webhook["failure_policy"], variables),
            "timeoutSeconds": literal(webhook["timeout_seconds"], variables),
            "reinvocationPolicy": literal(webhook["reinvocation_policy"], variables),
            "matchPolicy": literal(webhook["match_policy"], variables),
        }],
    }


def check_program(resources, variables, locals_):
    route = re.search(r'pub const ROUTE: &str = "([^"]+)";', (ROOT / "src/lambda/mod.rs").read_text()).group(1)
    webhook = block(resources[("kubernetes_mutating_webhook_configuration_v1", "this")]["webhook"])
    check("the webhook calls local.webhook_url, with no caBundle (AWS's public certificate)",
          block(webhook["client_config"]) == {"url": "${local.webhook_url}", "__is_block__": True}, webhook["client_config"])
    expected = '"${trimsuffix(aws_lambda_function_url.this.function_url, "/")}%s${local.token}"' % route
    check(f"the url is the Function URL, the Lambda's route {route} and the current token",
          locals_["webhook_url"] == expected, locals_["webhook_url"])

    function = resources[("aws_lambda_function", "this")]
    environment = literal(block(block(function["environment"])["variables"]) if isinstance(
        block(function["environment"])["variables"], list) else block(function["environment"])["variables"], variables)
    read = set(re.findall(r'var\("(SIDECAR_INJECTOR_\w+)"\)', (ROOT / "src/lambda/cold_start.rs").read_text()))
    check("the function's environment names only variables cold_start.rs reads", set(environment) <= read,
          (sorted(environment), sorted(read)))
    check("each parameter is pinned to its version, so that a change replaces every instance",
          environment == {
              "SIDECAR_INJECTOR_CONFIG_PARAMETER": "${aws_ssm_parameter.config.name}:${aws_ssm_parameter.config.version}",
              "SIDECAR_INJECTOR_TOKEN_PARAMETER": "${aws_ssm_parameter.token.name}:${aws_ssm_parameter.token.version}"},
          environment)
    check("no concurrency reserved by default (a new account cannot reserve any): -1 unless asked",
          variables["reserved_concurrency"]["default"] is None
          and literal(function["reserved_concurrent_executions"], variables) == "${coalesce(var.reserved_concurrency, -1)}")
    check("the function's timeout is one second under the webhook's",
          literal(function["timeout"], variables) == "${var.webhook_timeout_seconds - 1}")
    check("the function runs provided.al2023 with handler bootstrap",
          literal(function["runtime"], variables) == "provided.al2023" and literal(function["handler"], variables) == "bootstrap")

    url = resources[("aws_lambda_function_url", "this")]
    check("the Function URL is public (auth NONE), the token guards it", literal(url["authorization_type"], variables) == "NONE")
    permissions = {name: literal(body, variables) for (kind, name), body in resources.items() if kind == "aws_lambda_permission"}
    check("InvokeFunctionUrl only for auth type NONE; InvokeFunction only through the Function URL",
          {(p["action"], p["principal"], p.get("function_url_auth_type"), p.get("invoked_via_function_url"))
           for p in permissions.values()} == {("lambda:InvokeFunctionUrl", "*", "NONE", None),
                                              ("lambda:InvokeFunction", "*", None, True)}, permissions)
    registration = resources[("kubernetes_mutating_webhook_configuration_v1", "this")]
    check("the webhook is written after the function, which accepts a new token first",
          "${aws_lambda_function.this}" in registration["depends_on"], registration["depends_on"])


def check_iam(data_sources):
    policy = data_sources[("aws_iam_policy_document", "this")]
    statements = {literal(s["sid"], {}): literal(s, {}) for s in policy["statement"]}
    check("the role may write its own log group's streams, nothing else of Logs",
          statements["Logs"]["actions"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
          and statements["Logs"]["resources"] == ["${aws_cloudwatch_log_group.this.arn}:*"], statements["Logs"])
    check("the role may read its two parameters and no other",
          statements["ReadItsTwoParameters"]["actions"] == ["ssm:GetParameter"]
          and statements["ReadItsTwoParameters"]["resources"] == ["${aws_ssm_parameter.config.arn}", "${aws_ssm_parameter.token.arn}"])
    kms = literal(block(policy["dynamic"])['"statement"']["content"][0], {})
    conditions = {c["variable"]: c["values"] for c in kms["condition"] if c["test"] == "StringEquals"}
    check("kms:Decrypt only through SSM in this region, and only for the token parameter",
          kms["actions"] == ["kms:Decrypt"] and conditions == {
              "kms:ViaService": ["ssm.${data.aws_region.current.region}.${data.aws_partition.current.dns_suffix}"],
              "kms:EncryptionContext:PARAMETER_ARN": ["${aws_ssm_parameter.token.arn}"]}, kms)
    assume = literal(block(data_sources[("aws_iam_policy_document", "assume")]["statement"]), {})
    check("only Lambda may assume the role", assume["actions"] == ["sts:AssumeRole"]
          and assume["principals"] == [{"type": "Service", "identifiers": ["lambda.amazonaws.com"]}], assume)


def check_outputs():
    outputs = {unquote(n): literal(body, {}) for entry in load("outputs.tf")["output"] for n, body in entry.items()}
    secret = [n for n, o in outputs.items() if "token" in o["value"] or "webhook_url" in o["value"]]
    check("every output that carries the token is sensitive, and only those are",
          all(outputs[n].get("sensitive") is True for n in secret if "parameter" not in outputs[n]["value"])
          and [n for n, o in outputs.items() if o.get("sensitive")] == ["webhook_url"], outputs)


def console(folder, tfvars, expression="1"):
    (folder / "test.auto.tfvars").write_text(tfvars)
    return subprocess.run(["terraform", "console", "-no-color"], cwd=folder, input=expression, capture_output=True,
                          text=True, env={**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": "/dev/null"})


# (variable, value as HCL, what the refusal must say; None: accepted)
VALIDATION_ROWS = [
    ("name", '"Bad_Name"', "lowercase letters, digits and '-'"),
    ("name", '"' + "a" * 65 + '"', "1 to 64"),
    ("name", '"-leading"', "starting and ending"),
    ("name", '"team-a-injector"', None),
    ("architecture", '"amd64"', "x86_64 or arm64"),
    ("config_yaml", '"' + "x" * 8193 + '"', "at most 8 KB"),
    ("memory_size", "64", "128 to 10240"),
    ("memory_size", "256.5", "whole number"),
    ("memory_size", "10240", None),
    ("reserved_concurrency", "0", "at least 1"),
    ("reserved_concurrency", "2.5", "whole number"),
    ("reserved_concurrency", "null", None),
    ("reserved_concurrency", "50", None),
    ("log_retention_days", "10", "one of the values CloudWatch Logs accepts"),
    ("kms_key_arn", '"alias/my-key"', "a KMS key ARN"),
    ("kms_key_arn", '"arn:aws:kms:eu-west-1:123456789012:key/0f4e-11aa"', None),
    ("webhook_timeout_seconds", "1", "2 to 30"),
    ("webhook_timeout_seconds", "31", "2 to 30"),
    ("failure_policy", '"fail"', "Fail or Ignore"),
    ("token_rotation_step", "-1", "0 or more"),
    ("token_rotation_step", "1.5", "whole number"),
]


def check_validations():
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "variables.tf").write_text((TERRAFORM / "variables.tf").read_text())
        for name, value, refusal in VALIDATION_ROWS:
            run = console(folder, f"{name} = {value}\n")
            said = " ".join((run.stdout + run.stderr).split())
            shown = value if len(value) < 40 else value[:20] + "…"
            # `console` exits 0 either way: what it prints says.
            refused = "Error: Invalid value for variable" in said
            if refusal is None:
                check(f"variable {name} = {shown} is accepted", not refused and run.stdout.strip() == "1", said[-300:])
            else:
                check(f"variable {name} = {shown} is refused, saying \"{refusal}\"", refused and refusal in said,
                      said[-300:])
    variables = {unquote(n): body for entry in load("variables.tf")["variable"] for n, body in entry.items()}
    check("every variable has a description and a type", all("description" in b and "type" in b for b in variables.values()),
          [n for n, b in variables.items() if "description" not in b or "type" not in b])


def check_rotation(resources, locals_):
    """The module's rotation expressions, evaluated by Terraform over steps 0 to 5: each slot's
    token changes when its keepers do, and the webhook's token is accepted at every step."""
    keepers = resources[("random_password", "token")]["keepers"]
    names = ["rotations", "current_slot", "previous_slot", "overlapping"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "variables.tf").write_text((TERRAFORM / "variables.tf").read_text())
        body = "\n".join(f"  {n} = {locals_[n][2:-1]}" for n in names)
        keeper = keepers[2:-1].replace("each.key", "k")
        (folder / "rotation.tf").write_text(
            f"locals {{\n{body}\n  keepers = {{ for k in [\"0\", \"1\"] : k => {keeper} }}\n}}\n")
        history, tokens, problems = [], {}, []
        for step in range(6):
            run = console(folder, f"token_rotation_step = {step}\n",
                          "jsonencode([local.current_slot, local.previous_slot, local.overlapping, local.keepers])")
            if "Error" in run.stdout + run.stderr:
                problems.append((run.stdout + run.stderr).strip()[-300:])
                break
            current, previous, overlapping, slots = json.loads(json.loads(run.stdout.strip()))
            for slot, keeper_value in slots.items():
                if tokens.get(slot, (None,))[0] != json.dumps(keeper_value):
                    tokens[slot] = (json.dumps(keeper_value), f"token {len(history)}-{slot}")
            accepted = {tokens[current][1]} | ({tokens[previous][1]} if overlapping else set())
            history.append((tokens[current][1], accepted))
        for (before, accepted_before), (after, accepted) in zip(history, history[1:]):
            # The API server may still send the old token while the new apply lands, and the new
            # one from then on: both must be accepted after each step.
            if before not in accepted and before != after:
                problems.append(f"{before} retired while the webhook may still send it")
            if after not in accepted:
                problems.append(f"{after} in the webhook, not accepted")
        rotated = [h[0] for h in history]
        changes = sum(1 for a, b in zip(rotated, rotated[1:]) if a != b)
    check(f"token rotation over steps 0-5: a new token at each odd step ({changes} in all), the one it "
          "replaces accepted until the next step", not problems and changes == 3, (problems, history))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schemas", type=Path, help="the cdktf providers' packages, unpacked: aws/, kubernetes/, random/")
    parser.add_argument("--render-webhook", metavar="URL", help="print the webhook Terraform registers, and stop")
    args = parser.parse_args()
    variables, resources, data_sources, locals_ = module()
    if args.render_webhook:
        print(json.dumps(rendered_webhook(resources, variables, args.render_webhook), indent=2))
        return
    if args.schemas:
        check_schemas(args.schemas, resources, data_sources)
    else:
        check("the providers' schemas were given (--schemas)", False, "run as .ci/run does")
    check_program(resources, variables, locals_)
    check_iam(data_sources)
    check_outputs()
    check_validations()
    check_rotation(resources, locals_)

    # The same registration as in the cluster.
    incluster = yaml.safe_load((ROOT / "deploy-incluster/70-mutatingwebhookconfiguration.yaml").read_text())["webhooks"][0]
    terraform = rendered_webhook(resources, variables, "URL")["webhooks"][0]
    same = {k: v for k, v in incluster.items() if k not in ("clientConfig", "matchConditions")}
    check("Terraform registers the webhook as deploy-incluster does",
          {k: v for k, v in terraform.items() if k != "clientConfig"} == same, json.dumps([terraform, same]))
    lambda_webhook = yaml.safe_load((ROOT / "deploy-lambda/mutatingwebhookconfiguration.yaml").read_text())["webhooks"][0]
    check("deploy-lambda's reference registration is deploy-incluster's",
          {k: v for k, v in lambda_webhook.items() if k not in ("clientConfig", "matchConditions")} == same)

    versions = block(load("versions.tf")["terraform"])
    providers = block(versions["required_providers"])
    check("terraform >= 1.6, hashicorp/aws >= 6.28, hashicorp/kubernetes and hashicorp/random required",
          literal(versions["required_version"], {}) == ">= 1.6"
          and literal(providers["aws"], {}) == {"source": "hashicorp/aws", "version": ">= 6.28"}
          and literal(providers["kubernetes"], {})["source"] == "hashicorp/kubernetes"
          and literal(providers["random"], {})["source"] == "hashicorp/random", providers)

    print("terraform: %d failed" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
