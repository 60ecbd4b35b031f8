#!/usr/bin/env python3
"""Faults under load: each happens while h2load drives the server, and no request is lost.

  tests/faults.py --server-bin PATH [--seconds 4]

The server runs as in the cluster: certificate and configuration mounted kubelet-style (a
`..data` symlink swapped atomically), reloaded by polling, with a drain delay. For each fault,
two h2load clients (8 HTTP/1.1 and 8 HTTP/2 keep-alive connections) and a client that opens a
new TLS connection per review run for --seconds; the fault happens in the middle. Every request
must be answered 2xx (503 shedding would be allowed; at this load there is none):

1. TLS certificate rotation: new connections get the new certificate.
2. Configuration reload: reviews get the new label.
3. An invalid configuration: refused and counted, the previous configuration keeps serving.
4. SIGTERM: readiness fails at once while reviews are still answered for the drain delay (the
   time endpoints take to drop the Pod; the load stops within it, as the API server's would),
   then the listener closes, a review that was half-sent before the signal still gets its
   answer, and the process exits 0.

Prints one PASS/FAIL line per check; exits non-zero if any failed.
"""

import argparse
import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_support import check, finish, free_port, h2load_results, insecure_tls, make_certificate, pinned, post, wait_until_answering  # noqa: E402

REVIEW = Path(__file__).resolve().parents[1] / "benches" / "load" / "review.json"
DRAIN_DELAY = 4.0

class Mount:
    """A folder mounted the way the kubelet mounts a Secret or ConfigMap: files are symlinks through
    `..data`, which is swapped in one rename when the content changes."""

    def __init__(self, root, files):
        self.root, self.generation = root, 0
        root.mkdir()
        self.update(files)
        for name in files:
            (root / name).symlink_to(Path("..data") / name)

    def update(self, files):
        self.generation += 1
        folder = self.root / f"..gen_{self.generation}"
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_bytes(content)
        temporary = self.root / "..data_tmp"
        temporary.symlink_to(folder.name)
        os.replace(temporary, self.root / "..data")


class Churn(threading.Thread):
    """A review on a new TLS connection, again and again: catches a handshake that fails mid-swap."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.statuses, self.stop = url, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                status, _ = post(self.url, REVIEW.read_bytes(), context=insecure_tls())
            except OSError as error:
                status = f"{type(error).__name__}: {error}"
            self.statuses.append(status)


def h2load(url, protocol, seconds, log):
    command = pinned(1, ["h2load", *(["--h1"] if protocol == "HTTP/1.1" else []), "-t", "1", "-c", "8", "-m", "1",
                         "-D", str(seconds), "-d", REVIEW, "-H", "content-type: application/json",
                         "--log-file", log, url])
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def under_load(name, url, folder, seconds, fault, at):
    """Run the load for `seconds`, call `fault` `at` seconds in, and check that nothing was lost."""
    logs = {p: folder / f"{name}-{p.replace('/', '')}.tsv" for p in ["HTTP/1.1", "HTTP/2"]}
    loads = {p: h2load(url, p, seconds, log) for p, log in logs.items()}
    churn = Churn(url)
    churn.start()
    time.sleep(at)  # into the load: the point of the test is that the fault happens mid-traffic
    fault()
    outputs = {p: load.communicate()[0] for p, load in loads.items()}
    churn.stop.set()
    churn.join()
    for protocol, out in outputs.items():
        results = h2load_results(out, logs[protocol])
        statuses = results["statuses"]
        bad = {s: n for s, n in statuses.items() if not (s.startswith("2") or s == "503")}
        check(results["lost"] == 0 and not bad and statuses,
              f"{name}: {protocol} load lost no request ({sum(statuses.values())} answered {statuses}, "
              f"{results['lost']} lost)")
    bad = [s for s in churn.statuses if s != 200]
    check(churn.statuses and not bad,
          f"{name}: {len(churn.statuses)} reviews on new connections all 200 {set(map(str, bad)) or ''}")


def patch_labels(url):
    status, body = post(url, REVIEW.read_bytes(), context=insecure_tls())
    assert status == 200, status
    patch = json.loads(base64.b64decode(json.loads(body)["response"]["patch"]))
    return {op["path"].rsplit("/", 1)[1]: op["value"] for op in patch if op["path"].startswith("/metadata/labels/")}


def served_certificate(port):
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with insecure_tls().wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def metric(metrics_url, name):
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def wait_for(condition, seconds=10):
    """Poll until `condition()` is true; the reload interval is 0.2 s."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sidecar-injector-faults-"))

    first_cert, first_key = make_certificate(folder, "first")
    second_cert, second_key = make_certificate(folder, "second")
    tls = Mount(folder / "tls", {"tls.crt": first_cert.read_bytes(), "tls.key": first_key.read_bytes()})
    config = Mount(folder / "config", {"config.yaml": b"labels: {foo: bar}\ndefaultProfiles: []\n"})

    port, metrics_port = free_port(), free_port()
    url, metrics_url = f"https://127.0.0.1:{port}/mutate", f"http://127.0.0.1:{metrics_port}/metrics"
    command = pinned(0, [args.server_bin, "serve", "--listen", f"127.0.0.1:{port}",
                         "--metrics-listen", f"127.0.0.1:{metrics_port}",
                         "--tls-cert", tls.root / "tls.crt", "--tls-key", tls.root / "tls.key",
                         "-c", config.root / "config.yaml", "--reload-interval", "0.2",
                         "--drain-delay", str(DRAIN_DELAY), "--shutdown-timeout", "20"])
    log = open(folder / "server.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "MIMALLOC_ARENA_EAGER_COMMIT": "0", "RUST_LOG": "warn"})
    try:
        wait_until_answering(f"https://127.0.0.1:{port}/healthz", server, "the server", 60, insecure_tls())
        check(served_certificate(port) == ssl.PEM_cert_to_DER_cert(first_cert.read_text()), "serving the first certificate")
        check(patch_labels(url) == {"foo": "bar"}, "the first configuration is in force")

        def rotate():
            tls.update({"tls.crt": second_cert.read_bytes(), "tls.key": second_key.read_bytes()})

        under_load("certificate rotation", url, folder, args.seconds, rotate, args.seconds / 3)
        second_der = ssl.PEM_cert_to_DER_cert(second_cert.read_text())
        check(wait_for(lambda: served_certificate(port) == second_der), "new connections get the new certificate")

        def reload():
            config.update({"config.yaml": b"labels: {foo: bar, reloaded: 'yes'}\ndefaultProfiles: []\n"})

        under_load("configuration reload", url, folder, args.seconds, reload, args.seconds / 3)
        check(wait_for(lambda: patch_labels(url) == {"foo": "bar", "reloaded": "yes"}), "reviews get the new label")

        refused_before = metric(metrics_url, 'sidecar_injector_config_reloads_total{result="failure"}')

        def break_config():
            config.update({"config.yaml": b"labels: [not, a, map]\n"})

        under_load("invalid configuration", url, folder, args.seconds, break_config, args.seconds / 3)
        check(wait_for(lambda: metric(metrics_url, 'sidecar_injector_config_reloads_total{result="failure"}')
                       == refused_before + 1), "the invalid configuration is refused and counted")
        check(patch_labels(url) == {"foo": "bar", "reloaded": "yes"}, "the previous configuration keeps serving")

        # SIGTERM: a review half-sent before the signal, finished after the listener has closed.
        body = REVIEW.read_bytes()
        half = insecure_tls().wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        half.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:1000])
        signalled = {}

        def terminate():
            server.send_signal(signal.SIGTERM)
            signalled["at"] = time.monotonic()
            readyz = post(f"https://127.0.0.1:{port}/readyz", b"", method="GET", context=insecure_tls())[0]
            check(readyz == 503, f"SIGTERM: /readyz fails at once ({readyz}) while reviews go on")

        under_load("SIGTERM", url, folder, args.seconds, terminate, args.seconds / 4)
        closed = wait_for(lambda: not accepting(port), DRAIN_DELAY + 5)
        waited = time.monotonic() - signalled["at"]
        check(closed and waited >= DRAIN_DELAY - 0.1,
              f"SIGTERM: the listener closes after the drain delay ({waited:.1f} s, delay {DRAIN_DELAY} s)")
        half.sendall(body[1000:])
        half.settimeout(10)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = half.recv(65536)
            if not chunk:
                break
            reply += chunk
        check(reply.startswith(b"HTTP/1.1 200"), f"SIGTERM: the half-sent review is answered: {reply[:15]!r}")
        half.close()
        try:
            code = server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            code = None
        check(code == 0, f"SIGTERM: the server exits 0 ({code})")
    finally:
        if server.poll() is None:
            server.kill()
    finish()


def accepting(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
