#!/usr/bin/env python3
"""The server's edge: what a client that opens connections and never uses them can do to it.

  tests/edge.py --server-bin PATH [--idle 10000]

With the default connection limits (--max-connections, --max-connections-per-client) and short
timeouts, each server run in a memory cgroup with the Deployment's limit (it must survive there),
one PASS or FAIL line each:
1. 10,000 idle TLS connections opened by one client (from 127.0.0.2) do not stop a new client
   (127.0.0.1) from getting its review answered without waiting for an idle connection to time out
   (the time is printed); a connection opened before keeps being served; connections past the
   limits are refused at once and counted in sidecar_injector_refused_connections_total.
2. Four clients (127.0.0.2 to 127.0.0.5) each holding their per-client maximum of idle TLS
   connections fill the global cap; a new client (127.0.0.1) still gets 20 reviews in a row
   answered, each on a new connection kept open (the slowest is printed), because each takes the
   place of the longest-idle connection of the client holding the most (evictions counted).
3. With limits small enough that the flooders keep a request in flight on every connection
   (--max-in-flight above --max-connections), nothing is evicted: a flooder's new connection and
   the new client's are refused, and the flooders' requests are answered.
4. Each timeout alone, the other set longer than the test: an idle HTTP/1.1 keep-alive connection
   and a half-sent HTTP/2 HEADERS frame are closed by the idle timeout, an idle HTTP/2 connection
   that answers no PING by the keep-alive.
"""

import argparse
import contextlib
import re
import select
import resource
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_support import (MemoryLimit, Served, check, finish, free_port, insecure_tls,  # noqa: E402
                          make_certificate, status_kib)

ROOT = Path(__file__).resolve().parents[1]
REVIEW = (ROOT / "benches" / "load" / "review.json").read_bytes()
IDLE_TIMEOUT = 3.0
HTTP2_KEEPALIVE = 1.0
LONG_KEEPALIVE = 60.0
# The server's default, for the floods run with the defaults.
DEFAULT_IDLE_TIMEOUT = 60.0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def memory_limit_mib():
    """The Deployment's memory limit."""
    text = (ROOT / "deploy-incluster" / "40-deployment.yaml").read_text()
    return int(re.search(r"limits:\s*\n\s*memory: (\d+)Mi", text).group(1))


CONTEXTS = {}


def tls(port, source="127.0.0.1", alpn=None, timeout=5):
    # One context per ALPN list: making one reads the system's CA bundle, ~20 ms each.
    key = tuple(alpn or [])
    if key not in CONTEXTS:
        CONTEXTS[key] = insecure_tls()
        if alpn:
            CONTEXTS[key].set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    return CONTEXTS[key].wrap_socket(raw, server_hostname="localhost")


def review_on(s):
    """One HTTP/1.1 review on an open connection, kept alive; its status."""
    s.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(REVIEW) + REVIEW)
    return parse_answer(s)


def parse_answer(s):
    """The status of the HTTP/1.1 answer read from `s`, its body read and dropped."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before an answer")
        head += chunk
    status = int(head.split(b" ")[1])
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    body = head.split(b"\r\n\r\n", 1)[1]
    while len(body) < length:
        body += s.recv(65536)
    return status


def closed_after(s, limit):
    """Seconds until the server closes `s` (reading and dropping what it sends), or None."""
    started = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            if not s.recv(65536):
                return time.monotonic() - started
        except (socket.timeout, TimeoutError):
            continue
        except (OSError, ssl.SSLError):
            return time.monotonic() - started
    return None


def seconds(after):
    return "never closed" if after is None else f"closed after {after:.1f} s"


def metric(metrics_port, name):
    """The value of `sidecar_injector_<name>`, or None when the server has no such metric."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    found = re.search(rf"^sidecar_injector_{name} (\S+)", text, re.M)
    return int(float(found.group(1))) if found else None


def refused_metric(metrics_port):
    return metric(metrics_port, "refused_connections_total")


def closed_by_server(sockets, expected, seconds=5.0):
    """The sockets the server has closed, waiting until `expected` have (or `seconds` pass)."""
    deadline, closed = time.monotonic() + seconds, set()
    while True:
        for i, s in enumerate(sockets):
            if i in closed:
                continue
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed.add(i)
            except ssl.SSLWantReadError:
                pass
            except OSError:
                closed.add(i)
        if len(closed) >= expected or time.monotonic() > deadline:
            return closed
        # Waiting on the sockets themselves, not sleeping: select returns when any has news.
        select.select([s for i, s in enumerate(sockets) if i not in closed], [], [], 0.2)


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, status_kib(self.pid))
            self.stop.wait(0.05)


def idle_flood(port, metrics_port, pid, count):
    earlier = tls(port)
    check(review_on(earlier) == 200, "a connection opened before the flood is served")
    sampler = Sampler(pid)
    sampler.start()
    held, refused, started = [], 0, time.monotonic()
    # The earlier connection reviews again every second of the flood: idle between requests it is
    # closed after the idle timeout (3 s here), and the flood can take longer than that on a slow
    # machine.
    served, last = True, started
    for _ in range(count):
        try:
            held.append(tls(port, source="127.0.0.2"))
        except (OSError, ssl.SSLError):
            refused += 1
        if time.monotonic() - last > 1.0:
            served = served and review_on(earlier) == 200
            last = time.monotonic()
    opened = time.monotonic() - started
    began = time.monotonic()
    fresh = tls(port)
    status = review_on(fresh)
    answered = time.monotonic() - began
    # Answered before any idle connection could time out: the server did not wait for one to go.
    check(status == 200 and answered < DEFAULT_IDLE_TIMEOUT,
          f"with {count:,} idle TLS connections opened by one client in {opened:.1f} s ({len(held)} still open), "
          f"a new client's review is answered {status}, in {answered * 1000:.0f} ms")
    check(served and review_on(earlier) == 200,
          "the connection opened before the flood is served during it and after it")
    counted = refused_metric(metrics_port)
    check(refused > 0 and counted >= refused,
          f"connections past the limits are refused at once and counted: the client saw {refused:,} refused, "
          f"sidecar_injector_refused_connections_total {counted:,}")
    for s in held:
        s.close()
    fresh.close()
    earlier.close()
    sampler.stop.set()
    sampler.join()
    print(f"RSS peak {sampler.peak / 1024:.1f} MiB")


FLOODERS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


def flooded_by_several(port, metrics_port, pid, per_client):
    """Four clients each at their per-client maximum of idle connections: the global cap is full."""
    sampler = Sampler(pid)
    sampler.start()
    held = {source: [tls(port, source=source) for _ in range(per_client)] for source in FLOODERS}
    opened = metric(metrics_port, "open_connections")
    check(opened == per_client * len(FLOODERS),
          f"{len(FLOODERS)} flooders hold {per_client} idle TLS connections each: {opened} open, the global cap")
    evicted_before = metric(metrics_port, "evicted_connections_total") or 0
    newcomer, answers = [], []
    for _ in range(20):
        began = time.monotonic()
        try:
            s = tls(port)
            status = review_on(s)
            newcomer.append(s)  # kept open: the cap stays full, so each new one must make room
        except (OSError, ssl.SSLError) as error:
            status = type(error).__name__
        answers.append((status, time.monotonic() - began))
    slowest = max(seconds for _, seconds in answers)
    check(all(status == 200 and seconds < DEFAULT_IDLE_TIMEOUT for status, seconds in answers),
          f"a new client on 127.0.0.1 gets 20 reviews in a row answered, each on a new connection: "
          f"{[status for status, _ in answers]}, the slowest in {slowest * 1000:.0f} ms")
    evicted = (metric(metrics_port, "evicted_connections_total") or 0) - evicted_before
    flat = [(source, i, s) for source, sockets in held.items() for i, s in enumerate(sockets)]
    closed = closed_by_server([s for _, _, s in flat], evicted)
    check(evicted == 20 and len(closed) == evicted,
          f"each took the place of a flooder's idle connection: sidecar_injector_evicted_connections_total "
          f"rose by {evicted}, and the flooders saw {len(closed)} of theirs closed")
    by_flooder = {source: sorted(i for n, (src, i, _) in enumerate(flat) if src == source and n in closed)
                  for source in FLOODERS}
    counts = [len(indexes) for indexes in by_flooder.values()]
    check(sum(counts) > 0 and max(counts) - min(counts) <= 1
          and all(ix == list(range(len(ix))) for ix in by_flooder.values()),
          f"each eviction took from the client holding the most, its connection idle the longest: {by_flooder}")
    for s in [s for _, _, s in flat] + newcomer:
        s.close()
    sampler.stop.set()
    sampler.join()
    print(f"RSS peak {sampler.peak / 1024:.1f} MiB")


def request_held_open(port, source):
    """A connection from `source` with a review in flight: all of it sent but its last byte."""
    s = tls(port, source=source)
    s.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(REVIEW) + REVIEW[:-1])
    return s


def all_busy(port, metrics_port, per_client):
    """Every connection mid-request: nothing to evict, so new connections are refused."""
    busy = [request_held_open(port, source) for source in FLOODERS for _ in range(per_client)]
    deadline = time.monotonic() + 10
    while metric(metrics_port, "requests_in_flight") != len(busy) and time.monotonic() < deadline:
        # Polling the server's own count of what it is answering, the readiness this needs.
        select.select([], [], [], 0.05)
    in_flight = metric(metrics_port, "requests_in_flight")
    check(in_flight == len(busy), f"the flooders keep a request in flight on each of their {len(busy)} connections: "
                                  f"sidecar_injector_requests_in_flight {in_flight}")
    refused_before = refused_metric(metrics_port)
    outcomes = []
    for source in (FLOODERS[0], "127.0.0.1"):
        try:
            s = tls(port, source=source)
            outcomes.append(f"answered {review_on(s)}")
        except (OSError, ssl.SSLError) as error:
            outcomes.append(f"refused ({type(error).__name__})")
    refused = refused_metric(metrics_port) - refused_before
    check(all(outcome.startswith("refused") for outcome in outcomes) and refused == 2
          and (metric(metrics_port, "evicted_connections_total") or 0) == 0,
          f"a flooder's new connection and the new client's are refused, not made room for: {outcomes}, "
          f"{refused} more refused, none evicted")
    statuses = []
    for s in busy:
        s.sendall(REVIEW[-1:])
    for s in busy:
        statuses.append(parse_answer(s))
    check(statuses == [200] * len(busy), f"the flooders' requests in flight are answered, none cut: {statuses}")


def idle_timeouts(port):
    """Run with a keep-alive longer than the test: only the idle timeout can close these."""
    s = tls(port)
    review_on(s)
    after = closed_after(s, IDLE_TIMEOUT + 5)
    check(after is not None and after >= IDLE_TIMEOUT - 0.5,
          f"an idle HTTP/1.1 keep-alive connection is closed after the idle timeout ({IDLE_TIMEOUT} s): {seconds(after)}")

    s = tls(port, alpn=["h2"])
    # A HEADERS frame on stream 1 announcing 100 bytes, of which 10 are sent.
    s.sendall(PREFACE + SETTINGS + b"\x00\x00\x64\x01\x04\x00\x00\x00\x01" + b"\x00" * 10)
    after = closed_after(s, IDLE_TIMEOUT + 5)
    check(after is not None and after >= IDLE_TIMEOUT - 0.5,
          f"a half-sent HTTP/2 HEADERS frame is cut off by the idle timeout ({IDLE_TIMEOUT} s; the keep-alive "
          f"would close it only after {2 * LONG_KEEPALIVE:.0f} s): {seconds(after)}")


def keepalive(port):
    """Run with an idle timeout longer than the test: only the keep-alive can close this."""
    s = tls(port, alpn=["h2"])
    check(s.selected_alpn_protocol() == "h2", "ALPN chose h2")
    s.sendall(PREFACE + SETTINGS)
    after = closed_after(s, 2 * HTTP2_KEEPALIVE + 5)
    check(after is not None,
          f"an idle HTTP/2 connection that answers no PING is closed by the keep-alive ({HTTP2_KEEPALIVE} s "
          f"to the PING, {HTTP2_KEEPALIVE} s for its answer; the idle timeout is {DEFAULT_IDLE_TIMEOUT:.0f} s): "
          f"{seconds(after)}")


@contextlib.contextmanager
def server(binary, folder, *flags):
    """The server with `flags`, under the Deployment's memory limit; (HTTPS port, metrics port,
    pid)."""
    cert, key = make_certificate(folder)
    port, metrics_port = free_port(), free_port()
    command = [binary, "serve", "--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics_port}",
               "--tls-cert", cert, "--tls-key", key, *flags]
    limit = MemoryLimit(memory_limit_mib(), f"edge-{port}")
    try:
        with Served(limit.wrap(command), folder / f"server-{port}.log", f"https://127.0.0.1:{port}/healthz") as process:
            yield port, metrics_port, process.pid
            check(process.poll() is None and limit.killed() == 0,
                  f"the server is still running under the Deployment's {limit.mib} MiB memory limit "
                  f"(the cgroup's peak, page cache included: {limit.peak_mib():.1f} MiB)")
    finally:
        limit.remove()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--idle", type=int, default=10_000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.idle + 1000)), hard))
    folder = Path(tempfile.mkdtemp(prefix="sidecar-injector-edge-"))
    # The defaults, as the Deployment runs them.
    with server(args.server_bin, folder) as (port, metrics_port, pid):
        idle_flood(port, metrics_port, pid, args.idle)
    with server(args.server_bin, folder) as (port, metrics_port, pid):
        flooded_by_several(port, metrics_port, pid, per_client=256)
    # Each flooder at 2 of its 3 connections, all 8 in flight: the global cap is full of busy ones.
    with server(args.server_bin, folder, "--max-connections", "8", "--max-connections-per-client", "3",
                "--max-in-flight", "64", "--request-timeout", "60") as (port, metrics_port, _):
        all_busy(port, metrics_port, per_client=2)
    with server(args.server_bin, folder, "--idle-timeout", str(IDLE_TIMEOUT), "--http2-keepalive",
                str(LONG_KEEPALIVE)) as (port, _, _):
        idle_timeouts(port)
    with server(args.server_bin, folder, "--http2-keepalive", str(HTTP2_KEEPALIVE)) as (port, _, _):
        keepalive(port)
    finish()


if __name__ == "__main__":
    main()
