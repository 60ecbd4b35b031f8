#!/usr/bin/env python3
"""Every Pod our test tables admitted with a patch, given to a real API server's validation.

`cargo test` with SIDECAR_INJECTOR_ADMITTED_PODS=DIR writes each Pod it admitted with a patch to
DIR, before and after the patch (see `admit` in tests/common/mod.rs). Inside the control-plane
launcher (docs/testing.md), this creates them all with `kubectl create --dry-run=server`, so the
API server validates each as it would a real creation, one PASS or FAIL line per Pod, named
after the test that made it:

    $SIDECAR_INJECTOR_KUBE_CLUSTER run -- python3 tests/e2e_admitted.py --pods DIR --at-least 60

A patched Pod passes when the API server accepts it, or when it refuses it for exactly the
reasons it refuses the Pod as it was before our patch: some tables feed deliberately odd Pods
(round-trip fixtures with placeholder values), and what is checked is that our patch adds no
error. No webhook is registered here: what is validated is exactly what our patch produced.
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from http_support import check, finish

NAMESPACE = "admitted"
NAME = re.compile(r'"admitted-(\d+)"')


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True)


def wait_for_service_account(name):
    """Pods need their ServiceAccount; the controller makes `default` a moment after the namespace."""
    deadline = time.monotonic() + 60
    while kubectl("get", "serviceaccount", name, "-n", NAMESPACE).returncode != 0:
        if time.monotonic() > deadline:
            sys.exit(f"no ServiceAccount {name} in {NAMESPACE} after 60 s")
        time.sleep(0.1)


def as_created_here(pod, i):
    """The Pod in our namespace, under a name of its own (tests reuse names, or use none)."""
    pod = json.loads(json.dumps(pod))
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    pod["metadata"] = pod.get("metadata") or {}
    pod["metadata"].pop("namespace", None)
    pod["metadata"].pop("generateName", None)
    pod["metadata"]["name"] = f"admitted-{i}"
    return pod


def reasons(message):
    """The API server's reasons, as a set: it lists a map's bad keys in no fixed order."""
    inner = message.strip().removeprefix("is invalid: [").removesuffix("]")
    return frozenset(re.split(r", (?=(?:metadata|spec)[.\[])", inner))


def refusals(pods):
    """Dry-run create all `pods` in one call: {index: the API server's message} for each refused."""
    items = [as_created_here(pod, i) for i, pod in pods.items()]
    # --validate=warn: unknown fields are dropped with a warning, as the API server drops them from
    # a patched Pod (some tables carry fields from the future on purpose); all else is validated.
    done = kubectl("create", "--dry-run=server", "--validate=warn", "-n", NAMESPACE, "-f", "-", "-o", "name",
                   stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    refused = {}
    for line in done.stderr.splitlines():
        match = NAME.search(line)
        if match:
            refused[int(match.group(1))] = reasons(line[match.end():])
    created = len(done.stdout.split())
    if created + len(refused) != len(items):
        sys.exit(f"kubectl answered for {created + len(refused)} of {len(items)} Pods:\n{done.stderr}")
    return refused


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", required=True, help="the folder the tests wrote the Pods to")
    parser.add_argument("--at-least", type=int, required=True,
                        help="fewer Pods than this means the tests did not write them: a failure")
    args = parser.parse_args()
    files = sorted(Path(args.pods).glob("*.json"))
    check(len(files) >= args.at_least, f"the tests admitted {len(files)} patched Pods (at least {args.at_least})")
    tests = [f.stem for f in files]
    both = [json.loads(f.read_text()) for f in files]
    kubectl("create", "namespace", NAMESPACE)
    accounts = {(b["patched"].get("spec") or {}).get("serviceAccountName") or "default" for b in both}
    for account in sorted(accounts - {"default"}):
        kubectl("create", "serviceaccount", account, "-n", NAMESPACE)  # refused when no valid name
    wait_for_service_account("default")

    refused = refusals({i: b["patched"] for i, b in enumerate(both)})
    before = refusals({i: both[i]["original"] for i in refused}) if refused else {}
    for i, test in enumerate(tests):
        if i not in refused:
            check(True, f"{test}: the API server accepts the patched Pod")
        else:
            same = before.get(i) == refused[i]
            check(same, f"{test}: the API server refuses the Pod as it refused it before the patch"
                        + ("" if same else f": after {refused[i]!r}, before {before.get(i)!r}"))
    finish()


if __name__ == "__main__":
    main()
