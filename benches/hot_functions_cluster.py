#!/usr/bin/env python3
"""The image's binary run as the Deployment runs it, under valgrind's callgrind: for
benches/hot_functions.sh, so that the hot list also holds what `--self-managed` runs (the kube
client with in-cluster credentials, the CA Secret, the caBundle). Inside the control-plane
launcher (docs/testing.md):

    $SIDECAR_INJECTOR_KUBE_CLUSTER run -- python3 benches/hot_functions_cluster.py --server-bin BIN --out DIR

deploy-incluster/ is created and a replica started as tests/e2e_cluster.py starts them (its
ServiceAccount, its ConfigMap, the Service's address), but under callgrind, twice: the first
creates the CA Secret, the second reads it, as every later start does. Each is stopped with SIGTERM
once the demo Deployment's Pods and one Pod more come up injected through it. DIR gets callgrind's
outputs, created.out and restarted.out.
"""
import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import e2e_cluster as e2e  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True, help="the image's sidecar-injector binary")
    parser.add_argument("--out", required=True, help="a folder for callgrind's outputs")
    args = parser.parse_args()
    with e2e.inside_the_cluster(args.server_bin) as (work, binary):
        # The replica runs as the Deployment's user: callgrind writes where that user may.
        written = work / "callgrind"
        written.mkdir(mode=0o777)
        written.chmod(0o777)
        deployed = e2e.Deployed(binary, work)
        # The first replica creates the CA Secret; every later start, the usual one, reads it.
        for start in ["created", "restarted"]:
            out = written / f"{start}.out"
            valgrind = [shutil.which("valgrind"), "--tool=callgrind", f"--callgrind-out-file={out}",
                        "--dump-instr=no", "--compress-strings=no", "--compress-pos=no"]
            replica = deployed.replica().start(wrapper=valgrind)
            try:
                if not replica.ready(seconds=300):
                    sys.exit(f"the replica did not become ready under callgrind:\n{replica.log.read_text()}")
                # The ReplicaSet retries until the webhook answers, as in the end-to-end test; then
                # one Pod more, created directly.
                if not e2e.wait_for("an injected Pod of the demo Deployment", e2e.injected_demo_pod, 300):
                    sys.exit(f"no Pod was injected through the replica:\n{replica.log.read_text()}")
                created, error = e2e.create_pod("sidecar-injector-test", e2e.pod(f"hot-{start}"))
                if not e2e.injected(created):
                    sys.exit(f"a Pod was not injected through the replica: {error}\n{replica.log.read_text()}")
            finally:
                status = replica.stop()
            if status != 0 or not out.exists():
                sys.exit(f"the replica exited with {status}:\n{replica.log.read_text()}")
            shutil.copyfile(out, Path(args.out) / out.name)


if __name__ == "__main__":
    main()
