#!/usr/bin/env python3
"""Overload: the server far past saturation, and clients that misbehave on purpose.

  tests/overload.py --server-bin PATH [--seconds 8] [--connections 2000]

1. Slowloris: TLS clients that never finish their request headers, and TCP clients that never
   start TLS, are cut off by the header-read (and handshake) timeout, while a normal review is
   still answered.
2. Overload: h2load keeps 2,000 keep-alive connections busy (pinned to another CPU than the
   server), and slow readers pipeline reviews without reading the answers. Throughout, the
   server answers only 200 or 503 (shedding), /healthz and /readyz on the probe listener pass a
   probe on a fresh connection every 200 ms (200 within the Deployment's timeoutSeconds), and the
   server keeps running under --max-rss-mib (a memory cgroup, as a container's limit).
3. Recovery: once the load stops, reviews are answered at once, with no restart.
4. A wedged review runtime (every worker blocked, through a test-only route) fails liveness.

Prints one PASS/FAIL line per check and exits non-zero if any failed. Figures (statuses, latency,
RSS) are printed for the record; the checks are of behaviour, not of speed.
"""

import argparse
import http.client
import re
import selectors
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_support import (MemoryLimit, Served, check, finish, free_port, h2load_results, insecure_tls,  # noqa: E402
                          make_certificate, pinned, post, status_kib)

REVIEW = Path(__file__).resolve().parents[1] / "benches" / "load" / "review.json"
HEADER_READ_TIMEOUT = 2.0
LIVENESS_WINDOW = 3.0

def tls_socket(port, timeout=5):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return insecure_tls().wrap_socket(raw, server_hostname="localhost")


def review_request(body):
    return (b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def lifetimes(sockets, deadline):
    """For each (socket, opened_at): seconds from its opening until the peer closed it (None if
    still open at `deadline`)."""
    selector = selectors.DefaultSelector()
    for i, (s, _) in enumerate(sockets):
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ, i)
    closed = [None] * len(sockets)
    while None in closed and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.05):
            try:
                data = key.fileobj.recv(4096)
            except ssl.SSLWantReadError:
                continue
            except OSError:
                data = b""
            if not data:
                closed[key.data] = time.monotonic() - sockets[key.data][1]
                selector.unregister(key.fileobj)
    return closed


def slowloris(port, url):
    stalled = []
    for _ in range(100):
        opened = time.monotonic()
        s = tls_socket(port)
        s.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n")
        stalled.append((s, opened))
    silent = [(socket.create_connection(("127.0.0.1", port)), time.monotonic()) for _ in range(50)]
    status, _ = post(url, REVIEW.read_bytes(), context=insecure_tls())
    check(status == 200, f"a review is answered while 150 slowloris connections stall (status {status})")
    closed = lifetimes(stalled + silent, time.monotonic() + HEADER_READ_TIMEOUT + 5)
    late = [c for c in closed if c is None or c > 2 * HEADER_READ_TIMEOUT + 2]
    known = [c for c in closed if c is not None]
    print(f"     slowloris connections closed {min(known):.2f}..{max(known):.2f} s after they opened")
    check(not late, f"all 100 unfinished headers and 50 silent TCP connections are closed within "
                    f"twice the {HEADER_READ_TIMEOUT:.0f} s timeout + 2 s ({len(late)} were not)")
    for s, _ in stalled + silent:
        s.close()


def liveness_timeout():
    """The liveness probe's timeoutSeconds in the Deployment users apply."""
    text = (Path(__file__).resolve().parents[1] / "deploy-incluster" / "40-deployment.yaml").read_text()
    probe = text[text.index("livenessProbe:"):]
    return int(re.search(r"timeoutSeconds: (\d+)", probe).group(1))


class Prober(threading.Thread):
    """/healthz and /readyz in turn on a fresh plain-HTTP connection to the probe listener every
    200 ms (the kubelet probes every few seconds), as the Deployment's probes do."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.results, self.stop = port, [], threading.Event()
        self.timeout = liveness_timeout()

    def run(self):
        paths = ["/healthz", "/readyz"]
        while not self.stop.is_set():
            path = paths[len(self.results) % 2]
            started = time.monotonic()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                connection.request("GET", path)
                ok = connection.getresponse().status == 200
                connection.close()
            except (OSError, http.client.HTTPException):
                ok = False
            self.results.append((path, ok, time.monotonic() - started))
            self.stop.wait(0.2)


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append(status_kib(self.pid))
            self.stop.wait(0.1)


def slow_readers(port, count, pipelined):
    """Connections that send `pipelined` reviews at once and then read their answers 1 KB at a time."""
    request = review_request(REVIEW.read_bytes())
    readers = []
    for _ in range(count):
        s = tls_socket(port, timeout=30)
        threading.Thread(target=lambda s=s: s.sendall(request * pipelined), daemon=True).start()
        readers.append(s)
    return readers


def read_answers(s, buffer, expected, seconds):
    """The statuses of up to `expected` pipelined answers, the first bytes of which are `buffer`."""
    statuses, deadline = [], time.monotonic() + seconds
    s.settimeout(5)
    while len(statuses) < expected and time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (OSError, ssl.SSLError):
            break
        if not chunk:
            break
        buffer += chunk
        while True:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = buffer[:head_end].decode("latin-1")
            length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))
            if len(buffer) < head_end + 4 + length:
                break
            statuses.append(int(head.split(" ", 2)[1]))
            buffer = buffer[head_end + 4 + length:]
    return statuses


def overload(args, port, metrics_port, pid, folder):
    url = f"https://127.0.0.1:{port}/mutate"
    log = folder / "overload.tsv"
    prober, sampler = Prober(metrics_port), RssSampler(pid)
    prober.start()
    sampler.start()
    pipelined = 50
    readers = slow_readers(port, 20, pipelined)
    command = pinned(1, ["h2load", "--h1", "-t", "1", "-c", str(args.connections), "-m", "1", "-D", str(args.seconds),
                         "-d", REVIEW, "-H", "content-type: application/json", "--log-file", log, url])
    # Read the slow readers' first bytes slowly while the load runs.
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    received = [b""] * len(readers)
    while load.poll() is None:
        for i, s in enumerate(readers):
            s.settimeout(0.01)
            try:
                received[i] += s.recv(1024)
            except (OSError, ssl.SSLError):
                pass
        time.sleep(0.2)
    out = load.communicate()[0]
    prober.stop.set()
    sampler.stop.set()
    prober.join()
    sampler.join()

    results = h2load_results(out, log)
    statuses = results["statuses"]
    print(f"     h2load, {args.connections} connections for {args.seconds} s: statuses {statuses}, "
          f"{results['rate']:,.0f} req/s")
    for status, values in sorted(results["latencies_ms"].items()):
        print(f"     status {status}: p50 {values[len(values) // 2]:.1f} ms, p99 {values[int(len(values) * 0.99)]:.1f} ms,"
              f" max {values[-1]:.1f} ms")
    check(set(statuses) <= {"200", "503"} and results["lost"] == 0,
          f"every request answered 200 or 503 ({results['lost']} lost; statuses {sorted(statuses)})")
    check(statuses.get("503", 0) > 0, f"past saturation it sheds: {statuses.get('503', 0)} fast 503s")
    check(statuses.get("200", 0) > 0, f"and keeps serving: {statuses.get('200', 0)} reviews answered")
    for path in ["/healthz", "/readyz"]:
        probes = [(ok, t) for p, ok, t in prober.results if p == path]
        # A probe passes as the kubelet's does: 200 within the Deployment's timeoutSeconds.
        passed = sum(ok for ok, _ in probes)
        slowest = max(t for _, t in probes)
        check(passed == len(probes) and len(probes) >= args.seconds,
              f"{path} on the probe listener passed {passed} of {len(probes)} probes, each 200 within the "
              f"Deployment's {prober.timeout} s timeout (slowest {slowest * 1000:.1f} ms)")
    print(f"     RSS peak {max(sampler.samples) / 1024:.1f} MiB")

    answered = [read_answers(s, start, pipelined, 30) for s, start in zip(readers, received)]
    counts = sorted(len(a) for a in answered)
    print(f"     slow readers: answers received per connection {counts}")
    complete = sum(len(a) == pipelined and set(a) <= {200, 503} for a in answered)
    check(complete == len(readers), f"each slow reader got all {pipelined} pipelined answers, 200 or 503 "
                                    f"({complete} of {len(readers)})")
    for s in readers:
        s.close()
    return statuses.get("503", 0) + sum(a.count(503) for a in answered)


def wedged(port, metrics_port):
    """Every worker of the review runtime blocked (a test-only route): liveness fails within the
    liveness window, while readiness, which says nothing of the runtime, still answers; once the
    workers are free, liveness passes again."""
    def healthz():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=2).status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None
    check(healthz() == 200, "before: /healthz 200")
    post(f"https://127.0.0.1:{port}/testing/wedge", b"", context=insecure_tls())
    started = time.monotonic()
    while healthz() != 503 and time.monotonic() - started < LIVENESS_WINDOW + 2:
        time.sleep(0.1)
    failed_after = time.monotonic() - started
    check(failed_after < LIVENESS_WINDOW + 2, f"a wedged review runtime makes /healthz fail: 503 after {failed_after:.1f} s "
                                              f"(liveness window {LIVENESS_WINDOW} s)")
    while healthz() != 200 and time.monotonic() - started < 20:
        time.sleep(0.1)
    check(healthz() == 200, f"once the workers are free, /healthz is 200 again ({time.monotonic() - started:.1f} s)")


def recovery(url):
    statuses = [post(url, REVIEW.read_bytes(), context=insecure_tls())[0] for _ in range(50)]
    check(statuses == [200] * 50, f"after the load, 50 reviews in a row are answered 200 ({set(statuses)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--max-rss-mib", type=int, default=128)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sidecar-injector-overload-"))
    cert, key = make_certificate(folder)
    port = free_port()
    metrics_port = free_port()
    command = pinned(0, [args.server_bin, "serve", "--listen", f"127.0.0.1:{port}",
                         "--metrics-listen", f"127.0.0.1:{metrics_port}", "--tls-cert", cert, "--tls-key", key,
                         "--header-read-timeout", str(HEADER_READ_TIMEOUT), "--liveness-window", str(LIVENESS_WINDOW),
                         # One client opens all 2,000 connections here: tests/edge.py checks the limits.
                         "--max-connections", "4096", "--max-connections-per-client", "4096",
                         "--testing-wedge"])
    limit = MemoryLimit(args.max_rss_mib, "overload")
    try:
        run(args, Served(limit.wrap(command), folder / "server.log", f"https://127.0.0.1:{port}/healthz"), port,
            metrics_port, folder, limit)
    finally:
        limit.remove()
    finish()


def run(args, served, port, metrics_port, folder, limit):
    url = f"https://127.0.0.1:{port}/mutate"
    with served as server:
        print(f"     idle RSS {status_kib(server.pid) / 1024:.1f} MiB")
        slowloris(port, url)
        shed = overload(args, port, metrics_port, server.pid, folder)
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        counted = int(float(re.search(r"^sidecar_injector_shed_requests_total (\S+)", text, re.M).group(1)))
        check(counted >= shed > 0, f"sidecar_injector_shed_requests_total counts the 503s ({counted} >= {shed})")
        recovery(url)
        wedged(port, metrics_port)
        check(server.poll() is None and limit.killed() == 0,
              f"the server is still running, under its {limit.mib} MiB memory limit (the cgroup's peak, page cache "
              f"included: {limit.peak_mib():.1f} MiB)")


if __name__ == "__main__":
    main()
