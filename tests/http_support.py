"""Small HTTP helpers shared by the Python end-to-end tests (standard library only)."""

import socket
import ssl
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
