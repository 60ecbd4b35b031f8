#!/usr/bin/env python3
"""The Terraform module, offline (no provider can be downloaded here, so no plan): its HCL is
parsed with python-hcl2 and checked against the program and against deploy-incluster/:
- the webhook url ends in the Lambda's route and the token;
- the rules, selectors and settings are those of the in-cluster webhook, and so are
  deploy-lambda's;
- the provider constraints and every variable's description and type are there.

Run by .ci/run in a venv with python-hcl2 and pyyaml."""

import json
import os
import re
import sys

import hcl2
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failures = []


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else ": " + str(detail)))
    if not ok:
        failures.append(what)


def load(name):
    with open(os.path.join(ROOT, "terraform", name)) as f:
        return hcl2.load(f)


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


def main():
    variables = {}
    for entry in load("variables.tf")["variable"]:
        for name, body in entry.items():
            variables[literal(name, {})] = body
    for name, body in variables.items():
        check("variable %s has a description and a type" % name, "description" in body and "type" in body, body)

    main_tf = load("main.tf")
    resources = {}
    for entry in main_tf["resource"]:
        for kind, named in entry.items():
            for name, body in named.items():
                resources[(literal(kind, {}), literal(name, {}))] = body
    locals_ = {k: v for entry in main_tf["locals"] for k, v in entry.items()}

    # The url: the Function URL, the Lambda's route, the token.
    with open(os.path.join(ROOT, "src", "lambda", "mod.rs")) as f:
        route = re.search(r'pub const ROUTE: &str = "([^"]+)";', f.read()).group(1)
    webhook = block(resources[("kubernetes_mutating_webhook_configuration_v1", "this")]["webhook"])
    url = block(webhook["client_config"])["url"]
    check("the webhook calls local.webhook_url", url == "${local.webhook_url}", url)
    expected = '"${trimsuffix(aws_lambda_function_url.this.function_url, "/")}%s${random_password.token.result}"' % route
    check("the url is the Function URL, the Lambda's route %s and the token" % route, locals_["webhook_url"] == expected, locals_["webhook_url"])
    check("no caBundle: AWS's public certificate", "ca_bundle" not in block(webhook["client_config"]))

    function_url = resources[("aws_lambda_function_url", "this")]
    check("the Function URL is public (auth NONE), the token guards it", literal(function_url["authorization_type"], variables) == "NONE")
    check("the function runs provided.al2023 with handler bootstrap",
          literal(resources[("aws_lambda_function", "this")]["runtime"], variables) == "provided.al2023"
          and literal(resources[("aws_lambda_function", "this")]["handler"], variables) == "bootstrap")
    permissions = [body for (kind, _), body in resources.items() if kind == "aws_lambda_permission"]
    actions = sorted(literal(p["action"], variables) for p in permissions)
    check("both Function URL invoke permissions", actions == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"], actions)

    # The same registration as in the cluster.
    with open(os.path.join(ROOT, "deploy-incluster", "70-mutatingwebhookconfiguration.yaml")) as f:
        incluster = yaml.safe_load(f)["webhooks"][0]
    rule = literal(block(webhook["rule"]), variables)
    expressions = literal(block(webhook["object_selector"]), variables)["match_expressions"]
    terraform = {
        "name": literal(webhook["name"], variables),
        "rules": [{"apiGroups": rule["api_groups"], "apiVersions": rule["api_versions"], "operations": rule["operations"],
                   "resources": rule["resources"], "scope": rule["scope"]}],
        "namespaceSelector": {"matchLabels": literal(block(webhook["namespace_selector"]), variables)["match_labels"]},
        "objectSelector": {"matchExpressions": [{"key": e["key"], "operator": e["operator"], "values": e["values"]} for e in expressions]},
        "sideEffects": literal(webhook["side_effects"], variables),
        "admissionReviewVersions": literal(webhook["admission_review_versions"], variables),
        "failurePolicy": literal(webhook["failure_policy"], variables),
        "timeoutSeconds": literal(webhook["timeout_seconds"], variables),
        "reinvocationPolicy": literal(webhook["reinvocation_policy"], variables),
        "matchPolicy": literal(webhook["match_policy"], variables),
    }
    # matchConditions follow each one's configuration (`sidecar-injector webhook-config`): the
    # in-cluster replicas write theirs, the Terraform registration has none yet, and
    # deploy-lambda's are only those of any configuration.
    same = {k: v for k, v in incluster.items() if k not in ("clientConfig", "matchConditions")}
    check("Terraform registers the webhook as deploy-incluster does", terraform == same, json.dumps([terraform, same]))

    with open(os.path.join(ROOT, "deploy-lambda", "mutatingwebhookconfiguration.yaml")) as f:
        lambda_webhook = yaml.safe_load(f)["webhooks"][0]
    check("deploy-lambda registers it as deploy-incluster does",
          {k: v for k, v in lambda_webhook.items() if k not in ("clientConfig", "matchConditions")} == same)
    # Their expressions are held to `webhook-config` by tests/registration.rs.
    names = [c["name"] for c in lambda_webhook["matchConditions"]]
    check("deploy-lambda carries the matchConditions of any configuration; deploy-incluster's replicas write theirs",
          names == ["not-opted-out", "not-injected"] and "matchConditions" not in incluster, names)
    check("deploy-lambda's url is the placeholder deploy.sh fills in", lambda_webhook["clientConfig"] == {"url": "WEBHOOK_URL"})

    # Versions.
    versions = block(load("versions.tf")["terraform"])
    providers = block(versions["required_providers"])
    check("terraform >= 1.6", literal(versions["required_version"], {}) == ">= 1.6")
    check("hashicorp/aws >= 6.28", literal(providers["aws"], {}) == {"source": "hashicorp/aws", "version": ">= 6.28"}, providers["aws"])
    check("hashicorp/kubernetes is required", literal(providers["kubernetes"], {})["source"] == "hashicorp/kubernetes")

    print("terraform: %d failed" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
