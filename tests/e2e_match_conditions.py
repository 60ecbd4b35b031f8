#!/usr/bin/env python3
"""The generated matchConditions against the real API server: they never hold back a Pod the
engine would change, and they keep most Pods it would leave alone from being sent.

Run inside the control-plane launcher (docs/testing.md):

    $SIDECAR_INJECTOR_KUBE_CLUSTER run -- python3 tests/e2e_match_conditions.py --cli-bin BINARY

For each configuration of the table, `sidecar-injector webhook-config` is applied as it prints it,
with nothing serving the webhook: under `failurePolicy: Fail` a Pod that is sent is refused
("failed calling webhook"), and a Pod that is not sent is admitted. Generated Pods (labels for
every selector operator, opt-outs in several spellings, the status annotation, hostNetwork,
skipped and selected namespaces) are dry-run-created, and each compared with `sidecar-injector
review` on the same Pod. Every Pod the engine would change (inject, or deny) must be sent; the
share of the others that are never sent is reported, and must be at least 90%. Then the outage:
with no replica at all, a Pod the configuration leaves alone is really created, and one it would
inject is refused.
"""

import argparse
import json
import random
import re
import subprocess
import tempfile
from pathlib import Path

from http_support import check, finish

ROOT = Path(__file__).resolve().parent.parent
NAMESPACES = ("mc-a", "mc-b", "mc-skipped")
SENT = "failed calling webhook"

EVERY_OPERATOR = """
injectByDefault: false
skip: {namespaces: [mc-skipped], hostNetwork: true}
profiles:
  web:
    selector: {matchLabels: {app: web}}
  in-notin:
    selector:
      matchExpressions:
        - {key: tier, operator: In, values: [front, edge]}
        - {key: team, operator: NotIn, values: [b]}
  exists:
    selector: {matchExpressions: [{key: logs, operator: Exists}]}
  absent-in-b:
    selector: {matchExpressions: [{key: app, operator: DoesNotExist}]}
    namespaces: [mc-b]
  named: {}
"""

DEFAULTS_AND_SELECTORS = """
injectByDefault: true
defaultProfiles: []
skip: {namespaces: [], hostNetwork: false}
profiles:
  api:
    selector: {matchLabels: {app: api}}
  not-b:
    selector: {matchExpressions: [{key: team, operator: NotIn, values: [b]}, {key: logs, operator: Exists}]}
"""


def many_selectors(count):
    """Profiles enough to make the `requested` condition near the longest generated."""
    lines = ["injectByDefault: false", "profiles:"]
    for i in range(count):
        lines += [f"  p{i}:", f"    selector: {{matchExpressions: [{{key: app, operator: In, values: [web{i}, api{i}]}}]}}"]
    return "\n".join(lines) + "\n"


# Each configuration, and whether its selectors are too many to express (engine/registration.rs,
# MAX_EXPRESSION): 30 profiles make a condition just under the limit, which the API server must
# take; 40 make one over it, left out, so that only the other conditions hold Pods back.
CONFIGS = {
    "builtin": (None, False),
    "example": ((ROOT / "deploy-incluster" / "examples" / "profiles.yaml").read_text(), False),
    "every-operator": (EVERY_OPERATOR, False),
    "defaults-and-selectors": (DEFAULTS_AND_SELECTORS, False),
    "many-selectors": (many_selectors(30), False),
    "broadened": (many_selectors(40), True),
}


def require(ok, what):
    """A check too frequent to print when it holds."""
    if not ok:
        check(False, what)


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True)


def generated(count, seed, prefix):
    rng = random.Random(seed)
    spellings = [None, None, None, "false", "False", " false ", "true", "TRUE", "web", "web,exists", "named",
                 "nope", ""]
    for i in range(count):
        labels, annotations = {}, {}
        for key, values in (("app", ["web", "api", "db", "web3", "api17"]), ("tier", ["front", "edge", "back"]),
                            ("team", ["a", "b"]), ("logs", ["", "yes"]),
                            ("logs.example.com/ship", ["true"]), ("sidecar-injector.io/inject", ["false", "False"])):
            if rng.random() < (0.1 if key == "sidecar-injector.io/inject" else 0.45):
                labels[key] = rng.choice(values)
        spelling = rng.choice(spellings)
        if spelling is not None:
            annotations["sidecar-injector.io/inject"] = spelling
        if rng.random() < 0.08:
            annotations["sidecar-injector.io/status"] = '{"hash":"0","profiles":["example"]}'
        if rng.random() < 0.2:
            annotations["logs.example.com/path"] = "/var/log/app"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{prefix}-{i}", "labels": labels, "annotations": annotations},
               "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}
        if rng.random() < 0.1:
            pod["spec"]["hostNetwork"] = True
        yield rng.choice(NAMESPACES), pod


def api_fates(pods, namespace):
    """Each Pod's fate under a server-side dry run: "sent", "admitted", or "invalid: …"."""
    listing = {"apiVersion": "v1", "kind": "List", "items": pods}
    result = kubectl("create", "--dry-run=server", "-n", namespace, "-o", "name", "-f", "-",
                     stdin=json.dumps(listing))
    admitted = {name.split("/", 1)[1] for name in result.stdout.split()}
    fates, sent = {}, result.stderr.count(SENT)
    for line in result.stderr.splitlines():
        match = re.search(r'pods? "([a-z0-9-]+)" is invalid', line)
        if match:
            fates[match.group(1)] = "invalid: " + line
    for pod in pods:
        name = pod["metadata"]["name"]
        fates.setdefault(name, "admitted" if name in admitted else "sent")
    counted = sum(1 for fate in fates.values() if fate == "sent")
    require(counted == sent, f"{namespace}: every Pod not admitted was refused for the webhook "
                           f"({counted} not admitted, {sent} '{SENT}')")
    return fates


def engine_changes(binary, config_path, namespace, pod, work):
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
        "namespace": namespace, "object": pod}}
    path = work / "review.json"
    path.write_text(json.dumps(review))
    args = [binary, "review", str(path)] + (["-c", str(config_path)] if config_path else [])
    response = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)["response"]
    return "patch" in response or not response["allowed"]


def apply_webhook(binary, config_path):
    args = [binary, "webhook-config"] + (["-c", str(config_path)] if config_path else [])
    printed = subprocess.run(args, capture_output=True, text=True, check=True)
    # Made anew each time: nothing of another test's registration (a caBundle, a replica's
    # fields) is kept.
    kubectl("delete", "mutatingwebhookconfiguration", "sidecar-injector", "--ignore-not-found")
    applied = kubectl("create", "-f", "-", stdin=printed.stdout)
    require(applied.returncode == 0, f"the API server takes the generated configuration: {applied.stderr.strip()}")
    return printed.stdout, printed.stderr


def until_sent(pod, namespace):
    """Until the API server uses the configuration just applied: the Pod, which it must send, is
    refused for the webhook."""
    for _ in range(300):
        if SENT in kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=json.dumps(pod)).stderr:
            return True
        subprocess.run(["sleep", "0.1"])
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cli-bin", required=True, help="the sidecar-injector command-line binary")
    parser.add_argument("--per-config", type=int, default=150)
    parser.add_argument("--seed", type=int, default=20261205)
    args = parser.parse_args()

    for ns in NAMESPACES:
        kubectl("create", "namespace", ns)
        kubectl("label", "namespace", ns, "sidecar-injector.io/inject=enabled")
        for _ in range(100):
            if kubectl("get", "serviceaccount", "default", "-n", ns).returncode == 0:
                break
            subprocess.run(["sleep", "0.1"])

    total, missed, left_alone, not_sent = 0, [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for index, (name, (text, broadened)) in enumerate(CONFIGS.items()):
            config_path = None
            if text is not None:
                config_path = work / f"{name}.yaml"
                config_path.write_text(text)
            printed, said = apply_webhook(args.cli_bin, config_path)
            check(("broadened" in said) == broadened, f"{name}: applied; broadened: {broadened} ({said.strip()})")
            canary = {"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": f"canary-{index}", "annotations": {"sidecar-injector.io/inject": "named"}},
                      "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}
            require(until_sent(canary, "mc-a"), f"{name}: the API server sends a Pod that names a profile")
            pods = list(generated(args.per_config, args.seed + index, f"{name}"))
            fates = {}
            for ns in NAMESPACES:
                fates.update(api_fates([pod for pod_ns, pod in pods if pod_ns == ns], ns))
            sent_here = left_here = alone_here = 0
            for ns, pod in pods:
                fate = fates[pod["metadata"]["name"]]
                require(not fate.startswith("invalid"), f"{name}: generated Pods are valid: {fate}")
                changes = engine_changes(args.cli_bin, config_path, ns, pod, work)
                total += 1
                if changes and fate != "sent":
                    missed.append(f"{name}/{ns}: {json.dumps(pod['metadata'])}")
                if not changes:
                    alone_here += 1
                    left_here += fate != "sent"
                sent_here += fate == "sent"
            print(f"{name}: {len(pods)} Pods, {sent_here} sent; of the {alone_here} the engine leaves alone, "
                  f"{left_here} never sent ({100 * left_here / max(alone_here, 1):.0f}%)")
            if not broadened:
                left_alone += alone_here
                not_sent += left_here
                check(alone_here > 0 and left_here / alone_here >= 0.9,
                      f"{name}: at least 90% of the Pods left alone are never sent")

        for line in missed:
            print(f"  HELD BACK {line}")
        check(total >= 500, f"at least 500 Pods compared: {total}")
        check(not missed, f"every Pod the engine would change is sent: {len(missed)} held back")
        print(f"in all: {total} Pods; without the broadened configuration, {not_sent} of the {left_alone} "
              f"left alone never sent ({100 * not_sent / max(left_alone, 1):.1f}%)")

        # The outage: the built-in configuration, nothing serving, failurePolicy: Fail.
        apply_webhook(args.cli_bin, None)
        injected = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "outage-injected"},
                    "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}
        check(until_sent(injected, "mc-a"), "outage: a Pod the built-in profile injects is refused")
        alone = {**injected, "metadata": {"name": "outage-host-network"},
                 "spec": {**injected["spec"], "hostNetwork": True}}
        created = kubectl("create", "-n", "mc-a", "-f", "-", stdin=json.dumps(alone))
        check(created.returncode == 0, f"outage: a hostNetwork Pod is created with no replica: {created.stderr.strip()}")
    finish()


if __name__ == "__main__":
    main()
