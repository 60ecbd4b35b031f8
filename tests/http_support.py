"""Small HTTP helpers shared by the Python end-to-end tests (standard library only)."""

import os
import re
import socket
import ssl
import subprocess
from pathlib import Path
import urllib.error
import urllib.request


def insecure_tls():
    """A TLS context that trusts any certificate: for benchmarks and fault scripts on loopback,
    where the test is of the server's behaviour, not of its certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def free_port():
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, content_type="application/json", method="POST", context=None):
    """(status, body) of one request; an HTTP error status is an answer, not an exception."""
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method)
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until_answering(url, process, what, seconds=600, context=None):
    """Poll `url` until it gives any HTTP answer; fail if `process` exits or time runs out."""
    import sys
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            post(url, b"{}", context=context)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(what + " did not come up")
        time.sleep(0.05)


def make_certificate(folder, name="cert"):
    """A P-256 certificate and key for localhost in `folder`, made by openssl: (cert, key) paths."""
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


def h2load_results(out, log):
    """What an h2load run did: {"statuses": {code: count}, "latencies_ms": {code: sorted list},
    "lost": requests with no HTTP answer (errored or timed out), "rate": requests per second}.

    h2load's own "failed" counts non-2xx answers as well as errors, so statuses come from its
    per-request log (`--log-file`) and lost requests from "errored" and "timeout"."""
    if not log.exists():
        raise RuntimeError(f"h2load wrote no log:\n{out}")
    statuses, latencies = {}, {}
    for line in log.read_text().splitlines():
        _, status, micros = line.split("\t")
        statuses[status] = statuses.get(status, 0) + 1
        latencies.setdefault(status, []).append(int(micros) / 1000)
    for values in latencies.values():
        values.sort()
    counts = re.search(r"(\d+) errored, (\d+) timeout", out)
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    if not counts or not rate:
        raise RuntimeError(f"h2load did not run:\n{out}")
    return {"statuses": statuses, "latencies_ms": latencies, "lost": int(counts.group(1)) + int(counts.group(2)),
            "rate": float(rate.group(1))}


def pinned(cpu, command):
    """`command` run on one CPU (when there are two or more), so that a server and its load
    generator do not take turns on the same core."""
    command = [str(part) for part in command]
    return ["taskset", "-c", str(cpu), *command] if os.cpu_count() >= 2 else command


def status_kib(pid, field="VmRSS"):
    """A kB figure of /proc/PID/status: VmRSS (resident now), VmHWM (peak resident)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


# The pass/fail lines of the scripts that check the server's behaviour (overload.py, faults.py,
# e2e_cluster.py).
FAILED = []
PASSED = []


def check(ok, what):
    """Print one PASS or FAIL line, and remember it for `finish`."""
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILED).append(what)


def finish():
    """Print the failures as JSON and the counts, and exit non-zero if anything failed."""
    import json
    import sys

    print(json.dumps({"failed": FAILED}))
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    sys.exit(1 if FAILED else 0)


class Served:
    """A server process started for a test, ended with SIGTERM when the `with` block ends (killed if
    it does not stop within 30 s); ready once `health_url` answers."""

    def __init__(self, command, log_path, health_url):
        self.command, self.log_path, self.health_url = [str(part) for part in command], log_path, health_url

    def __enter__(self):
        env = {**os.environ, "MIMALLOC_ARENA_EAGER_COMMIT": "0", "RUST_LOG": "warn"}
        self.process = subprocess.Popen(self.command, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT, env=env)
        try:
            wait_until_answering(self.health_url, self.process, "the server", 60, insecure_tls())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self.process

    def __exit__(self, *_):
        import signal
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class MemoryLimit:
    """A memory cgroup (v1) with a limit, as the kubelet gives a container the Deployment's: a
    server run in it that needs more is killed by the kernel, as it would be in the cluster. So a
    test checks that the server survives under the limit, and only prints what it used."""

    def __init__(self, mib, name):
        self.mib = mib
        self.path = Path(f"/sys/fs/cgroup/memory/sidecar-injector-{os.getpid()}-{name}")
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(self.mib * 1024 * 1024))

    def wrap(self, command):
        """`command`, run inside the cgroup."""
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "limited", *command]

    def killed(self):
        return int(re.search(r"^oom_kill (\d+)$", (self.path / "memory.oom_control").read_text(), re.M).group(1))

    def peak_mib(self):
        return int((self.path / "memory.max_usage_in_bytes").read_text()) / 2**20

    def remove(self):
        self.path.rmdir()
