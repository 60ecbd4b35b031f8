#!/usr/bin/env python3
"""Every Pod our test tables admitted with a patch, every workload of the `inject -f` corpus, and deploy-incluster's optional component, given to a real API server's validation.

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

With `--manifests DIR` (what `cargo test` wrote with SIDECAR_INJECTOR_INJECTED_MANIFESTS=DIR,
see tests/manifests.rs), every workload of the corpus is also created with `--dry-run=server`
before injection and after it, with each configuration: each that the API server accepts before
must be accepted after. Those it refuses before are named, and not counted as checked.

With `--component FILE` (deploy-incluster built with an optional kustomize component, as .ci/run
builds it), its namespaces are created and everything else is created with `--dry-run=server`.
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
CORPUS = "corpus"
# The kinds `inject` injects into, in the API version it reads them in (src/engine/manifests.rs).
HANDLED = {("v1", "Pod"), ("v1", "PodTemplate"), ("v1", "ReplicationController"),
           ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
           ("apps/v1", "ReplicaSet"), ("batch/v1", "Job"), ("batch/v1", "CronJob")}


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True)


def wait_for_service_account(name, namespace):
    """Pods need their ServiceAccount; the controller makes `default` a moment after the namespace."""
    deadline = time.monotonic() + 60
    while kubectl("get", "serviceaccount", name, "-n", namespace).returncode != 0:
        if time.monotonic() > deadline:
            sys.exit(f"no ServiceAccount {name} in {namespace} after 60 s")
        time.sleep(0.1)


def namespace_with_accounts(namespace, pod_specs):
    """`namespace`, with the ServiceAccounts `pod_specs` name (refused when no valid name)."""
    kubectl("create", "namespace", namespace)
    accounts = {(spec or {}).get("serviceAccountName") or "default" for spec in pod_specs}
    for account in sorted(accounts - {"default"}):
        kubectl("create", "serviceaccount", account, "-n", namespace)
    wait_for_service_account("default", namespace)


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


def refusals(objects, namespace, prefix):
    """Dry-run create all `objects` ({index: object}, each already named `prefix-index`) in one
    call: {index: the API server's reasons} for each refused."""
    items = list(objects.values())
    # --validate=warn: unknown fields are dropped with a warning, as the API server drops them from
    # a patched Pod (some tables carry fields from the future on purpose); all else is validated.
    done = kubectl("create", "--dry-run=server", "--validate=warn", "-n", namespace, "-f", "-", "-o", "name",
                   stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    name = re.compile(rf'"{prefix}-(\d+)"')
    refused = {}
    for line in done.stderr.splitlines():
        match = name.search(line)
        if match:
            refused[int(match.group(1))] = reasons(line[match.end():])
    created = len(done.stdout.split())
    if created + len(refused) != len(items):
        sys.exit(f"kubectl answered for {created + len(refused)} of {len(items)} objects:\n{done.stderr}")
    return refused


# The property tests write hundreds of generated Pods; the tables' own are counted apart, so that
# the property tests alone cannot meet the floor.
PROPERTY_TESTS = ("injection_adds_exactly_the_profile", "parameters_land_verbatim_or_the_pod_is_refused")


def admitted_pods(folder, at_least, tables_at_least):
    """The test tables' patched Pods: accepted, or refused only as before the patch."""
    files = sorted(Path(folder).glob("*.json"))
    tables = [f for f in files if not f.stem.startswith(PROPERTY_TESTS)]
    check(len(files) >= at_least and len(tables) >= tables_at_least,
          f"the tests admitted {len(files)} patched Pods (at least {at_least}), {len(tables)} of them from the "
          f"test tables, not the property tests (at least {tables_at_least})")
    tests = [f.stem for f in files]
    both = [json.loads(f.read_text()) for f in files]
    namespace_with_accounts(NAMESPACE, [b["patched"].get("spec") for b in both])

    def named(pods):
        return {i: as_created_here(pod, i) for i, pod in pods.items()}

    refused = refusals(named({i: b["patched"] for i, b in enumerate(both)}), NAMESPACE, "admitted")
    before = refusals(named({i: both[i]["original"] for i in refused}), NAMESPACE, "admitted") if refused else {}
    for i, test in enumerate(tests):
        # One check a row: the patched Pod is accepted, or refused for what was refused before.
        accepted = i not in refused
        same = not accepted and before.get(i) == refused[i]
        said = ("the API server accepts the patched Pod" if accepted else
                "the API server refuses the Pod as it refused it before the patch"
                + ("" if same else f": after {refused[i]!r}, before {before.get(i)!r}"))
        check(accepted or same, f"{test}: {said}")


def read_as_kubectl(path):
    """The objects of a manifest file, as kubectl reads them, `List`s flattened."""
    done = kubectl("annotate", "--local", "-o", "json", "sidecar-injector.test/none-", "-f", str(path))
    if done.returncode != 0:
        sys.exit(f"kubectl cannot read {path}: {done.stderr}")
    decoder, text, objects = json.JSONDecoder(), done.stdout, []
    at = 0
    while text[at:].strip():
        at = len(text) - len(text[at:].lstrip())
        read, at = decoder.raw_decode(text, at)
        objects.extend(read["items"] if read.get("kind") == "List" else [read])
    return objects


def workloads(path):
    """The workloads of a manifest file that `inject` injects into, each named `corpus-N` in the
    order of the file (names repeat across files; the namespace is ours)."""
    found = [o for o in read_as_kubectl(path) if (o.get("apiVersion"), o.get("kind")) in HANDLED]
    for workload in found:
        metadata = workload.setdefault("metadata", {})
        metadata.pop("namespace", None)
        metadata.pop("generateName", None)
    return found


def pod_spec(workload):
    kind = workload["kind"]
    if kind == "Pod":
        return workload.get("spec")
    if kind == "PodTemplate":
        return (workload.get("template") or {}).get("spec")
    template = workload.get("spec", {}).get("jobTemplate", {}).get("spec", {}) if kind == "CronJob" else workload.get("spec", {})
    return (template.get("template") or {}).get("spec")


def injected_manifests(folder, at_least):
    """Each corpus workload the API server accepts before injection, accepted after it."""
    befores = sorted(Path(folder).glob("*.before.yaml"))
    cases = []  # (file stem, configuration, workload index in the file, before, after)
    for before in befores:
        stem = before.name.removesuffix(".before.yaml")
        original = workloads(before)
        afters = sorted(Path(folder).glob(f"{stem}.*.after.yaml"))
        check(len(afters) >= 2, f"{stem}: injected with {len(afters)} configurations (at least 2)")
        for after in afters:
            config = after.name.removeprefix(stem + ".").removesuffix(".after.yaml")
            injected = workloads(after)
            check(len(injected) == len(original), f"{stem} with {config}: as many workloads after as before")
            cases.extend((stem, config, i, b, a) for i, (b, a) in enumerate(zip(original, injected)))
    namespace_with_accounts(CORPUS, [pod_spec(w) for case in cases for w in case[3:]])

    def named(workload, i):
        workload = json.loads(json.dumps(workload))
        workload["metadata"]["name"] = f"corpus-{i}"
        return workload

    refused_before = refusals({i: named(c[3], i) for i, c in enumerate(cases)}, CORPUS, "corpus")
    checked = {i: named(c[4], i) for i, c in enumerate(cases) if i not in refused_before}
    refused_after = refusals(checked, CORPUS, "corpus")
    accepted = {(c[0], c[2]) for i, c in enumerate(cases) if i not in refused_before}
    check(len(accepted) >= at_least,
          f"the API server accepts {len(accepted)} corpus workloads as they are (at least {at_least})")
    for i, (stem, config, n, workload, _) in enumerate(cases):
        what = f"{stem} workload {n + 1} ({workload['kind']} {workload['metadata'].get('name', '')}) with {config}"
        if i in refused_before:
            print(f"(not checked: {what}: refused before injection: {sorted(refused_before[i])[0][:160]})")
        else:
            check(i not in refused_after, f"{what}: accepted before and after injection"
                                          + (f": after {sorted(refused_after[i])!r}" if i in refused_after else ""))


def component(path):
    """Every object of a built deploy-incluster, accepted as it would be created."""
    objects = read_as_kubectl(path)
    for namespace in [o for o in objects if o["kind"] == "Namespace"]:
        kubectl("create", "-f", "-", stdin=json.dumps(namespace))
    rest = [o for o in objects if o["kind"] != "Namespace"]
    done = kubectl("create", "--dry-run=server", "-f", "-", "-o", "name",
                   stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": rest}))
    created = done.stdout.split()
    check(done.returncode == 0 and len(created) == len(rest),
          f"{path}: the API server accepts all {len(rest)} objects besides the namespaces "
          f"({', '.join(o for o in created if 'networkpolic' in o)} among them)"
          + ("" if done.returncode == 0 else f": {done.stderr.strip()}"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", required=True, help="the folder the tests wrote the Pods to")
    parser.add_argument("--at-least", type=int, required=True,
                        help="fewer Pods than this means the tests did not write them: a failure")
    parser.add_argument("--manifests", help="the folder the tests wrote the corpus and its injections to")
    parser.add_argument("--tables-at-least", type=int, default=1,
                        help="how many of them must come from the test tables rather than the property tests")
    parser.add_argument("--workloads-at-least", type=int, default=1,
                        help="fewer corpus workloads accepted before injection than this is a failure")
    parser.add_argument("--component", help="deploy-incluster built with an optional component")
    args = parser.parse_args()
    admitted_pods(args.pods, args.at_least, args.tables_at_least)
    if args.manifests:
        injected_manifests(args.manifests, args.workloads_at_least)
    if args.component:
        component(args.component)
    finish()


if __name__ == "__main__":
    main()
