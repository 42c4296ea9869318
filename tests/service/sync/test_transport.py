"""HttpSyncTransport against real loopback sockets that misbehave: every failure keeps the queue intact."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from service.sync.transport import HttpSyncTransport
from signalos_core.offline import PullRequest, PushRequest, SyncTransportError


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = {
            "/bad-gateway/pull": (502, b"<html>upstream down</html>"),
            "/garbage/pull": (200, b'{"not": "a pull response"}'),
            "/unauthorised/pull": (401, b'{"code": "not_authenticated"}'),
        }[self.path.split("?")[0]]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep test output quiet
        return


@pytest.fixture
def odd_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("base", "cause", "ambiguous"),
    [
        ("/bad-gateway", "http_502_unknown", True),
        ("/garbage", "protocol", True),
        ("/unauthorised", "http_401_not_authenticated", False),
    ],
)
def test_bad_answers_are_transport_errors(odd_server: str, base: str, cause: str, ambiguous: bool) -> None:
    with httpx.Client(base_url=odd_server, timeout=5) as http:
        transport = HttpSyncTransport(http, "token", base_path=base)
        with pytest.raises(SyncTransportError) as info:
            transport.pull(PullRequest(device_id="d1"))
    assert (info.value.cause, info.value.ambiguous) == (cause, ambiguous)


def test_a_server_that_never_answers_is_an_ambiguous_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections into the backlog, never reads or answers
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.3) as http:
            transport = HttpSyncTransport(http, "token")
            request = PushRequest(device_id="d1", sent_at_device=datetime.now(UTC), actions=[])
            with pytest.raises(SyncTransportError) as info:
                transport.push(request)
    finally:
        listener.close()
    assert (info.value.cause, info.value.ambiguous) == ("network", True), "the push may have arrived"
