#!/usr/bin/env python3
"""The Lambda's registrations on a real API server, through two token rotations, inside the
control-plane launcher (docs/testing.md):

    $SIDECAR_INJECTOR_KUBE_CLUSTER run -- python3 tests/e2e_lambda.py --cli-bin CLI \\
        --terraform-webhook RENDERED.json

The function runs in `cargo lambda watch` behind a TLS front on loopback. The front plays the
Function URL: it sends each request to the function's current instances, and an update of the
function's environment starts new instances and moves requests to them once they answer, as
Lambda does. A real Function URL has AWS's public certificate; this one is the test's own, so the
test adds it as the caBundle. Shown, one PASS line each:

1. The registration Terraform's HCL makes (RENDERED.json, from `tests/terraform_test.py
   --render-webhook`) is accepted, and Pods are injected through it.
2. A rotation as Terraform makes it (token_rotation_step 0 -> 1 -> 2): the function accepts both
   tokens, then the webhook sends the new one, then the old one is retired. Pods are created all
   along: none is refused, each is injected, and the old token is refused at the end.
3. The same for the registration deploy.sh renders, and a rotation in deploy.sh's order
   (--rotate-token).
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import secrets
import signal
import ssl
import subprocess
import threading
from pathlib import Path

import yaml

from e2e_cluster import (CONFIGURATION, LOGS, ROOT, STATUS, create_pod, get, kubectl, namespace, pod, said,
                         wait_for)
from http_support import check, finish, free_port, insecure_tls, make_certificate, post, wait_until_answering

CONFIG = ROOT / "src" / "engine" / "default-config.yaml"
FUNCTION = "/lambda-url/sidecar-injector-lambda"


class Front(http.server.BaseHTTPRequestHandler):
    """The Function URL: each request goes to the function's current instances."""
    backend = None  # the emulator's port
    seen = []  # the token of each request, in order

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Front.seen.append(self.path.split("?")[0].rsplit("/", 1)[-1])
        upstream = http.client.HTTPConnection("127.0.0.1", Front.backend, timeout=30)
        upstream.request("POST", FUNCTION + self.path, body=body,
                         headers={"Content-Type": self.headers.get("Content-Type", "")})
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.getheader("Content-Type", ""))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()


class Function:
    """The function's instances: one `cargo lambda watch` per environment."""

    def __init__(self):
        self.watch = None

    def deploy(self, tokens):
        """A new environment holding `tokens`: new instances, which take the requests once they
        answer; then the old ones stop."""
        port = free_port()
        watch = subprocess.Popen(
            ["cargo", "lambda", "watch", "-A", "127.0.0.1", "-P", str(port), "--bin", "sidecar-injector-lambda",
             "--env-var", "SIDECAR_INJECTOR_TOKEN=" + "\n".join(tokens), "--env-var", f"SIDECAR_INJECTOR_CONFIG_FILE={CONFIG}"],
            cwd=ROOT, stdout=(LOGS / "lambda.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_until_answering(f"http://127.0.0.1:{port}{FUNCTION}/mutate/{tokens[0]}", watch, "cargo lambda watch")
        old, self.watch, Front.backend = self.watch, watch, port
        if old is not None:
            os.killpg(old.pid, signal.SIGTERM)
            old.wait(timeout=30)

    def stop(self):
        if self.watch is not None:
            os.killpg(self.watch.pid, signal.SIGTERM)
            self.watch.wait(timeout=30)


class Creator(threading.Thread):
    """Creates Pods one after another until stopped: how many, which were refused, which came
    back uninjected."""

    def __init__(self, ns, prefix):
        super().__init__(daemon=True)
        self.ns, self.prefix, self.running = ns, prefix, True
        self.created, self.refused, self.uninjected = 0, [], []

    def run(self):
        while self.running:
            name = f"{self.prefix}-{self.created + len(self.refused)}"
            created, error = create_pod(self.ns, pod(name))
            if created is None:
                self.refused.append(f"{name}:{said(error)}")
            else:
                self.created += 1
                if STATUS not in created["metadata"].get("annotations", {}):
                    self.uninjected.append(name)

    def stop(self):
        self.running = False
        self.join()


def trusting(rendered, cert):
    """`rendered`, trusting the front's certificate (a real Function URL needs no caBundle)."""
    rendered["webhooks"][0]["clientConfig"]["caBundle"] = base64.b64encode(cert.read_bytes()).decode()
    return rendered


def register(rendered, cert):
    """Replace the registration with `rendered`."""
    kubectl("delete", "mutatingwebhookconfiguration", CONFIGURATION, "--ignore-not-found")
    done = kubectl("create", "-f", "-", stdin=json.dumps(trusting(rendered, cert)), ok=False)
    return done.returncode == 0, done.stderr


def reregister(rendered, cert):
    """Update the registration in place, as `terraform apply` and `kubectl apply` do."""
    live = get("mutatingwebhookconfiguration", CONFIGURATION)
    rendered = trusting(rendered, cert)
    rendered["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    kubectl("replace", "-f", "-", stdin=json.dumps(rendered))


def terraform_webhook(path, url, token):
    return json.loads(Path(path).read_text().replace("WEBHOOK_URL", f"{url}/mutate/{token}"))


def deploy_sh_webhook(cli, url, token):
    rendered = subprocess.run([str(ROOT / "deploy-lambda" / "deploy.sh"), "--render-webhook", url, str(CONFIG)],
                              env={**os.environ, "TOKEN": token, "SIDECAR_INJECTOR": cli},
                              capture_output=True, text=True, check=True).stdout
    return yaml.safe_load(rendered)


def rotation(what, ns, function, render, old, cert, url):
    """Rotate from `old` to a new token while Pods are created: (new token, the creator)."""
    new = secrets.token_hex(20)
    creator = Creator(ns, what.split()[0].lower())
    creator.start()
    wait_for("Pods before the rotation", lambda: creator.created >= 3, 60)
    function.deploy([new, old])  # 1: both accepted
    reregister(render(new), cert)  # 2: the webhook sends the new one
    wait_for("a review with the new token", lambda: new in Front.seen, 30)
    function.deploy([new])  # 3: the old one retired
    settled = creator.created
    wait_for("Pods after the rotation", lambda: creator.created >= settled + 3, 60)
    creator.stop()
    status = post(f"{url}/mutate/{old}", b"{}", context=insecure_tls())[0]
    check(not creator.refused and not creator.uninjected and creator.created >= 6 and status == 404,
          f"{what}: the new token is accepted, then sent, then the old one retired; {creator.created} Pods "
          f"created meanwhile, none refused ({creator.refused[:2]}), each injected ({creator.uninjected[:2]}); "
          f"the old token now gets {status}")
    return new


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cli-bin", required=True, help="the sidecar-injector CLI, for deploy.sh's rendering")
    parser.add_argument("--terraform-webhook", required=True, help="tests/terraform_test.py --render-webhook WEBHOOK_URL")
    args = parser.parse_args()
    if "KUBE_CA" not in os.environ:
        raise SystemExit("run me inside the control-plane launcher (docs/testing.md)")
    work = Path(LOGS)
    cert, key = make_certificate(work, "front")
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Front)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{port}"
    function = Function()
    ns = namespace("through-lambda", labelled=True)
    try:
        token = secrets.token_hex(20)
        function.deploy([token])
        ok, error = register(terraform_webhook(args.terraform_webhook, url, token), cert)
        created, error = create_pod(ns, pod("terraform")) if ok else (None, error)
        check(created is not None and STATUS in created["metadata"].get("annotations", {}),
              f"the registration Terraform's HCL makes is accepted, and a Pod is injected through it{said(error)}")
        token = rotation("Terraform rotation (token_rotation_step 0, 1, 2)", ns, function,
                         lambda t: terraform_webhook(args.terraform_webhook, url, t), token, cert, url)

        ok, error = register(deploy_sh_webhook(args.cli_bin, url, token), cert)
        created, error = create_pod(ns, pod("deploy-sh")) if ok else (None, error)
        live = get("mutatingwebhookconfiguration", CONFIGURATION)["webhooks"][0]
        check(created is not None and STATUS in created["metadata"].get("annotations", {})
              and [c["name"] for c in live.get("matchConditions", [])][:2] == ["not-opted-out", "not-injected"],
              f"the registration deploy.sh renders, with its configuration's matchConditions, is accepted, and a "
              f"Pod is injected through it{said(error)}")
        rotation("deploy.sh rotation (--rotate-token)", ns, function,
                 lambda t: deploy_sh_webhook(args.cli_bin, url, t), token, cert, url)
    except RuntimeError as error:
        check(False, f"the test could not go on: {error}")
    finally:
        function.stop()
        server.shutdown()
    finish()


if __name__ == "__main__":
    main()
