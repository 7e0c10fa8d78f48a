"""The rules of a multiplexed connection's streams, shared by HTTP/2 and HTTP/3: a request stream's cycle, the
extended CONNECT hand-off, the admission of apps under the task limit, the abuse counter, the limits' checks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import pytest
from asgi_core import (
    Admission,
    Config,
    ConnectionInfo,
    Headers,
    Receive,
    Registry,
    RequestHead,
    Scope,
    Send,
    ServerContext,
    UpgradeRequest,
    WindowCounter,
    check_limits,
    stream_cycle,
    tunnel_upgrade,
)

CONN = ConnectionInfo(client=("192.0.2.1", 1234), server=("127.0.0.1", 443), scheme="https")
LOGGER = logging.getLogger("test.multiplex")


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """An app for the tests that never run one."""


class Writer:
    """Enough of a ResponseWriter for a cycle to run an app that answers 204."""

    can_send_trailers = True
    can_send_informational = True
    can_sendfile = False

    def __init__(self) -> None:
        self.started: list[int] = []

    def request_body(self) -> None: ...
    def body_consumed(self, size: int) -> None: ...
    def send_informational(self, status: int, headers: Headers) -> None: ...
    def start_response(self, status: int, headers: Headers) -> None:
        self.started.append(status)

    def send_data(self, data: bytes) -> None: ...
    def drain(self) -> None: ...
    async def send_file(self, file: Any, offset: int, count: int) -> None: ...
    def end_response(self, trailers: Headers | None) -> None: ...
    def abort_response(self) -> None: ...


def head(method: str = "GET", path: bytes = b"/a?b=1", protocol: str | None = None) -> RequestHead:
    return RequestHead(
        method=method,
        path=path,
        protocol=protocol,
        headers=[(b"host", b"example.org")],
        content_length=5,
        expect_continue=False,
    )


def test_a_stream_cycle_carries_the_http_version_and_the_extensions_every_stream_honours() -> None:
    context = ServerContext(app=app, config=Config(root_path="/mount"), state={"k": 1})
    cycle = stream_cycle(Writer(), context, CONN, head(), "3", ended=False)
    scope = cycle.scope
    assert (scope["http_version"], scope["method"], scope["path"], scope["query_string"]) == (
        "3",
        "GET",
        "/mount/a",
        b"b=1",
    )
    assert set(scope["extensions"]) == {
        "http.response.pathsend",
        "http.response.early_hint",
        "http.response.trailers",
    }
    assert scope["state"] == {"k": 1}
    assert cycle.content_length == 5
    assert stream_cycle(Writer(), context, CONN, head(), "2", ended=True).request_state.name == "ENDED"


class Handler:
    token = "websocket"

    def __init__(self, *, accept: bool) -> None:
        self.accept = accept
        self.seen: list[UpgradeRequest] = []

    def accepts(self, request: UpgradeRequest) -> bool:
        self.seen.append(request)
        return self.accept

    def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> asyncio.Protocol:
        return asyncio.Protocol()


def context_with(handler: Handler | None) -> ServerContext:
    registry = Registry(discover=False)
    if handler is not None:
        registry.add_upgrade(handler)
    return ServerContext(app=app, registry=registry)


def test_an_extended_connect_goes_to_its_handler_or_is_refused_with_501_or_400() -> None:
    accepting = Handler(accept=True)
    found = tunnel_upgrade(context_with(accepting), CONN, head("CONNECT", b"/chat", "WebSocket"), "2")
    assert not isinstance(found, int)
    handler, request = found
    assert handler is accepting
    assert (request.method, request.target, request.http_version, request.leftover) == (
        "CONNECT",
        b"/chat",
        "2",
        b"",
    )
    assert request.conn is CONN
    assert tunnel_upgrade(context_with(None), CONN, head("CONNECT", b"/chat", "websocket"), "3") == 501
    assert (
        tunnel_upgrade(context_with(accepting), CONN, head("CONNECT", b"/", "h2c"), "2") == 501
    )  # never a tunnel
    assert (
        tunnel_upgrade(context_with(Handler(accept=False)), CONN, head("CONNECT", b"/", "websocket"), "3") == 400
    )


def test_admission_runs_at_most_the_limit_then_starts_waiting_apps_in_order() -> None:
    async def main() -> None:
        started: list[str] = []
        release = asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            started.append(scope["path"])
            await release.wait()
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        context = ServerContext(app=app)
        cycles = [
            stream_cycle(Writer(), context, CONN, head(path=f"/{i}".encode()), "2", ended=True) for i in range(5)
        ]
        admission = Admission(asyncio.get_running_loop(), LOGGER, 2, 2, "HTTP/2")
        assert [admission.admit(cycle) for cycle in cycles] == [True, True, True, True, False]  # two run, two wait
        assert admission.running == 2
        assert admission.is_waiting(cycles[2])
        admission.withdraw(cycles[2])  # its stream ended before its app started: it never runs
        assert not admission.is_waiting(cycles[2])
        await asyncio.sleep(0)
        assert started == ["/0", "/1"]
        release.set()
        for _ in range(10):
            await asyncio.sleep(0)
        assert started == ["/0", "/1", "/3"]
        assert admission.running == 0

    asyncio.run(main())


def test_window_counter_allows_the_limit_per_window() -> None:
    counter = WindowCounter(3, 10.0)
    assert [counter.hit(0.0) for _ in range(4)] == [True, True, True, False]
    assert not counter.hit(9.9)
    assert counter.hit(10.0)  # a new window


@dataclass(frozen=True)
class Limits:
    max_streams: int | None = 10
    window: float | None = 1.0


def test_check_limits_names_the_field_and_the_bound() -> None:
    check_limits(Limits(), counts=("max_streams",), seconds=("window",))
    check_limits(Limits(None, None), counts=("max_streams",), seconds=("window",))  # None: not set here
    with pytest.raises(ValueError, match=r"^Limits\.max_streams must be at least 1, got 0$"):
        check_limits(Limits(max_streams=0), counts=("max_streams",), seconds=("window",))
    with pytest.raises(ValueError, match=r"^Limits\.window must be a positive number of seconds, got -1\.0$"):
        check_limits(Limits(window=-1.0), counts=("max_streams",), seconds=("window",))
