#!/usr/bin/env python3
"""The engine's Pod Security levels against the API server's own Pod Security admission.

Run inside the control-plane launcher (docs/testing.md):

    $SIDECAR_INJECTOR_KUBE_CLUSTER run -- python3 tests/e2e_pod_security.py --cli-bin BINARY

Generated Pods (a seeded walk from a restricted Pod through changes to every field the checks
read), the test tables' Pods (tests/fixtures/pods.json) and the round-trip fixtures' pod
templates are each dry-run-created in three namespaces, labelled `enforce=privileged`,
`enforce=baseline` and `enforce=restricted`. A Pod the privileged namespace refuses is invalid
for other reasons and is left out (and counted). For every other Pod, `sidecar-injector review
--explain` must give the level the API server's verdicts imply: admitted in restricted means
restricted, else admitted in baseline means baseline, else privileged. Every disagreement is
printed with the Pod.
"""

import argparse
import copy
import json
import random
import re
import subprocess
import tempfile
from pathlib import Path

from http_support import check, finish

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures" / "kubernetes"
LEVELS = ("privileged", "baseline", "restricted")
# A configuration that reads every Pod and changes nothing a check reads.
NEUTRAL = "labels: {checked: pod-security}\nskip: {hostNetwork: false, namespaces: []}\n"


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True)


# --- generated Pods ------------------------------------------------------------------------------

def restricted_pod():
    safe = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {}},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "registry.example/app:1", "securityContext": dict(safe)}],
        },
    }


def containers(pod):
    return pod["spec"].get("initContainers", []) + pod["spec"]["containers"]


def some_container(pod, rng):
    return rng.choice(containers(pod))


def container_sc(pod, rng):
    return some_container(pod, rng).setdefault("securityContext", {})


def pod_sc(pod, _rng):
    return pod["spec"].setdefault("securityContext", {})


def either_sc(pod, rng):
    return pod_sc(pod, rng) if rng.random() < 0.4 else container_sc(pod, rng)


SECCOMP = [None, {"type": "RuntimeDefault"}, {"type": "Localhost", "localhostProfile": "p.json"}, {"type": "Unconfined"}]
APPARMOR = [None, {"type": "RuntimeDefault"}, {"type": "Localhost", "localhostProfile": "p"}, {"type": "Unconfined"}]
SELINUX = [{"type": t} for t in ("container_t", "container_init_t", "container_kvm_t", "container_engine_t", "spc_t", "")] \
    + [{"user": "system_u"}, {"role": "system_r"}, {"level": "s0:c1,c2"}, {"user": ""}]
CAPABILITIES = ["NET_BIND_SERVICE", "CHOWN", "KILL", "SETUID", "SYS_CHROOT", "AUDIT_WRITE", "NET_RAW", "SYS_ADMIN",
                "SYS_PTRACE", "NET_ADMIN", "ALL"]
SYSCTLS = ["kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
           "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
           "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
           "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "kernel.msgmax",
           "net.core.somaxconn", "net.ipv4.tcp_slow_start_after_idle", "vm.overcommit_memory"]
SYSCTL_VALUES = {"net.ipv4.ip_local_port_range": "1024 65000", "net.ipv4.ping_group_range": "0 0",
                 "net.ipv4.ip_local_reserved_ports": "8080", "net.ipv4.tcp_rmem": "4096 87380 6291456",
                 "net.ipv4.tcp_wmem": "4096 16384 4194304"}
VOLUMES = {
    "emptyDir": {}, "configMap": {"name": "c"}, "secret": {"secretName": "s"}, "downwardAPI": {"items": []},
    "projected": {"sources": []}, "persistentVolumeClaim": {"claimName": "c"}, "csi": {"driver": "d.example"},
    "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"],
                                                    "resources": {"requests": {"storage": "1Gi"}}}}},
    "image": {"reference": "registry.example/data:1"}, "hostPath": {"path": "/var/log"},
    "nfs": {"server": "nfs.example", "path": "/"}, "iscsi": {"targetPortal": "10.0.0.9:3260", "iqn": "iqn.2001-04.com.example:a", "lun": 0},
    "gitRepo": {"repository": "https://git.example/r"}, "cephfs": {"monitors": ["10.0.0.9:6789"]},
}
HOSTS = ["", "127.0.0.1", "::1", "10.0.0.9", "node.example"]


def set_or_clear(target, key, value):
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def probe(pod, rng):
    c = some_container(pod, rng)
    handler = rng.choice(["httpGet", "tcpSocket"])
    action = {"port": 8080}
    if rng.random() < 0.8:
        action["host"] = rng.choice(HOSTS)
    if handler == "httpGet":
        action["path"] = "/"
    where = rng.choice(["livenessProbe", "readinessProbe", "startupProbe", "postStart", "preStop"])
    if where in ("postStart", "preStop"):
        if handler == "tcpSocket":  # deprecated in lifecycle handlers, and refused by validation
            handler, action = "httpGet", {**action, "path": "/"}
        c.setdefault("lifecycle", {})[where] = {handler: action}
    elif c.get("restartPolicy") != "Always" and c in pod["spec"].get("initContainers", []):
        pass  # plain init containers may not have probes
    else:
        c[where] = {handler: action}


def add_volume(pod, rng):
    kind = rng.choice(list(VOLUMES))
    volumes = pod["spec"].setdefault("volumes", [])
    volume = {"name": f"v{len(volumes)}"}
    if not (kind == "emptyDir" and rng.random() < 0.3):  # sometimes no source at all: an emptyDir
        volume[kind] = copy.deepcopy(VOLUMES[kind])
    volumes.append(volume)


def add_init(pod, rng):
    init = {"name": f"init{len(pod['spec'].get('initContainers', []))}", "image": "registry.example/init:1"}
    if rng.random() < 0.5:
        init["restartPolicy"] = "Always"
    if rng.random() < 0.6:
        init["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod["spec"].setdefault("initContainers", []).append(init)


def add_container(pod, rng):
    c = {"name": f"c{len(pod['spec']['containers'])}", "image": "registry.example/side:1"}
    if rng.random() < 0.6:
        c["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod["spec"]["containers"].append(c)


def capabilities(pod, rng):
    caps = container_sc(pod, rng).setdefault("capabilities", {})
    field = rng.choice(["add", "drop", "drop"])
    caps[field] = rng.sample(CAPABILITIES, rng.randint(0, 2))


def sysctls(pod, rng):
    names = rng.sample(SYSCTLS, rng.randint(1, 2))
    pod_sc(pod, rng)["sysctls"] = [{"name": n, "value": SYSCTL_VALUES.get(n, "1")} for n in names]


def host_port(pod, rng):
    c = some_container(pod, rng)
    port = {"containerPort": 8080}
    if rng.random() < 0.7:
        port["hostPort"] = rng.choice([0, 8080])
    c["ports"] = [port]


def apparmor_annotation(pod, rng):
    c = some_container(pod, rng)
    value = rng.choice(["runtime/default", "localhost/p", "unconfined", ""])
    pod["metadata"]["annotations"][f"container.apparmor.security.beta.kubernetes.io/{c['name']}"] = value


def privileged(sc, rng):
    sc["privileged"] = rng.choice([True, True, False])
    if sc["privileged"] and rng.random() < 0.8:  # validation refuses it beside allowPrivilegeEscalation: false
        sc.pop("allowPrivilegeEscalation", None)


def proc_mount(pod, rng):
    container_sc(pod, rng)["procMount"] = rng.choice(["Default", "Unmasked", "Unmasked"])
    if rng.random() < 0.8:  # validation allows Unmasked only in a user namespace
        pod["spec"]["hostUsers"] = False


def host_process(pod, rng):
    on = rng.random() < 0.7
    for c in containers(pod):
        c.setdefault("securityContext", {})["windowsOptions"] = {"hostProcess": on}
    pod["spec"]["hostNetwork"] = on


# Windows Pods may set few of the Linux fields; these are what they can vary.
WINDOWS_MUTATIONS = [
    host_process,
    lambda pod, rng: set_or_clear(either_sc(pod, rng), "runAsNonRoot", rng.choice([None, True, False])),
    lambda pod, rng: add_volume(pod, rng),
    lambda pod, rng: host_port(pod, rng),
    lambda pod, rng: probe(pod, rng),
]

MUTATIONS = [
    lambda pod, rng: pod["spec"].__setitem__(rng.choice(["hostNetwork", "hostPID", "hostIPC"]), rng.random() < 0.7),
    lambda pod, rng: set_or_clear(pod["spec"], "hostUsers", rng.choice([None, True, False])),
    lambda pod, rng: privileged(container_sc(pod, rng), rng),
    lambda pod, rng: set_or_clear(container_sc(pod, rng), "allowPrivilegeEscalation", rng.choice([None, True, False])),
    lambda pod, rng: set_or_clear(either_sc(pod, rng), "runAsNonRoot", rng.choice([None, True, False])),
    lambda pod, rng: set_or_clear(either_sc(pod, rng), "runAsUser", rng.choice([None, 0, 1000])),
    lambda pod, rng: set_or_clear(either_sc(pod, rng), "seccompProfile", copy.deepcopy(rng.choice(SECCOMP))),
    lambda pod, rng: set_or_clear(either_sc(pod, rng), "appArmorProfile", copy.deepcopy(rng.choice(APPARMOR))),
    lambda pod, rng: set_or_clear(either_sc(pod, rng), "seLinuxOptions", copy.deepcopy(rng.choice(SELINUX))),
    lambda pod, rng: proc_mount(pod, rng),
    lambda pod, rng: either_sc(pod, rng).__setitem__("windowsOptions", {"hostProcess": rng.random() < 0.5}),
    capabilities, capabilities, sysctls, host_port, probe, probe, add_volume, add_volume, add_init, add_container,
    apparmor_annotation,
]


def generated(count, seed):
    rng = random.Random(seed)
    for n in range(count):
        pod, mutations = restricted_pod(), MUTATIONS
        if rng.random() < 0.05:
            pod["spec"] = {"os": {"name": "windows"}, "containers": [{"name": "app", "image": "registry.example/app:1"}]}
            mutations = WINDOWS_MUTATIONS
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
            rng.choice(mutations)(pod, rng)
        pod["metadata"]["name"] = f"gen-{n:05d}"
        yield pod


# --- the fixtures -------------------------------------------------------------------------------

def fixture_pods():
    table = json.loads((ROOT / "tests" / "fixtures" / "pods.json").read_text())
    for name, pod in table.items():
        pod = {**copy.deepcopy(pod), "apiVersion": "v1", "kind": "Pod"}
        pod.setdefault("metadata", {})["name"] = "table-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        pod["metadata"].pop("namespace", None)
        yield pod
    for path in sorted(FIXTURES.glob("apps.v1.*.json")):
        template = json.loads(path.read_text())["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": copy.deepcopy(template.get("metadata") or {}),
               "spec": copy.deepcopy(template["spec"])}
        pod["metadata"]["name"] = "fixture-" + path.stem.split(".")[-1].lower()
        pod["metadata"].pop("namespace", None)
        yield pod


# --- the two verdicts ---------------------------------------------------------------------------

def api_verdicts(pods, namespace):
    """Each Pod's fate in `namespace` under a server-side dry run: "admitted", "forbidden" (Pod
    Security) or "invalid: <message>"."""
    listing = {"apiVersion": "v1", "kind": "List", "items": pods}
    result = kubectl("create", "--dry-run=server", "--validate=false", "-n", namespace, "-o", "name", "-f", "-", stdin=json.dumps(listing))
    fate = {name.split("/", 1)[1]: "admitted" for name in result.stdout.split()}
    for line in result.stderr.splitlines():
        match = re.search(r'pods? "([a-z0-9-]+)" is (forbidden|invalid)', line, re.I)
        if match:
            fate[match.group(1)] = "forbidden" if "violates PodSecurity" in line else "invalid: " + line
    return fate


def engine_level(binary, config, pod, work):
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
        "namespace": "checked", "object": pod}}
    path = work / "review.json"
    path.write_text(json.dumps(review))
    run = subprocess.run([binary, "review", "--explain", "-c", str(config), str(path)], capture_output=True, text=True)
    match = re.search(r"^pod security: (\w+) before", run.stderr, re.M)
    return match.group(1) if match else f"no level ({run.stderr.strip()})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cli-bin", required=True, help="the sidecar-injector command-line binary")
    parser.add_argument("--generated", type=int, default=1200)
    parser.add_argument("--at-least", type=int, default=1000, help="Pods that must be compared")
    parser.add_argument("--seed", type=int, default=20261205)
    args = parser.parse_args()

    pods = list(generated(args.generated, args.seed)) + list(fixture_pods())
    for level in LEVELS:
        ns = f"pss-{level}"
        kubectl("create", "namespace", ns)
        kubectl("label", "namespace", ns, f"pod-security.kubernetes.io/enforce={level}")
        for _ in range(100):
            if kubectl("get", "serviceaccount", "default", "-n", ns).returncode == 0:
                break
            subprocess.run(["sleep", "0.1"])
    fates = {level: api_verdicts(pods, f"pss-{level}") for level in LEVELS}

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "neutral.yaml"
        config.write_text(NEUTRAL)
        compared, invalid, disagreements, seen = 0, [], [], {level: 0 for level in LEVELS}
        for pod in pods:
            name = pod["metadata"]["name"]
            fate = {level: fates[level].get(name, "no answer") for level in LEVELS}
            if fate["privileged"] != "admitted":
                invalid.append(f"{name}: {fate['privileged']}")
                continue
            if any(f not in ("admitted", "forbidden") for f in fate.values()):
                disagreements.append(f"{name}: unexpected API answers {fate}")
                continue
            expected = ("restricted" if fate["restricted"] == "admitted"
                        else "baseline" if fate["baseline"] == "admitted" else "privileged")
            got = engine_level(args.cli_bin, config, pod, work)
            compared += 1
            seen[expected] += 1
            if got != expected:
                disagreements.append(f"{name}: API server {expected}, engine {got}: {json.dumps(pod)}")
    print(f"compared {compared} Pods ({len(pods)} made, {len(invalid)} invalid for other reasons); "
          f"API server levels: {seen}")
    for line in invalid[:5]:
        print(f"  left out, e.g. {line[:300]}")
    for line in disagreements:
        print(f"  DISAGREE {line}")
    check(compared >= args.at_least, f"at least {args.at_least} Pods compared: {compared}")
    check(all(seen[level] >= args.at_least // 10 for level in LEVELS),
          f"each level is at least a tenth of the floor: {seen}")
    check(not disagreements, f"the engine agrees with the API server's Pod Security on every Pod: "
                             f"{len(disagreements)} disagreements")
    finish()


if __name__ == "__main__":
    main()
