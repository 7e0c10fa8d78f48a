"""RequestCycle against a recording ResponseWriter: the ASGI rules every HTTP-like protocol relies on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

import pytest
from asgi_core import (
    AccessRecord,
    ClientDisconnected,
    Config,
    ConnectionInfo,
    Headers,
    InvalidMessage,
    Message,
    Receive,
    RequestCycle,
    ResponseState,
    Scope,
    Send,
    ServerContext,
    build_http_scope,
    reason_phrase,
)

QUIET = Config(server_header=False, date_header=False)
CONN = ConnectionInfo(client=("192.0.2.1", 1234), server=("127.0.0.1", 80), scheme="http")
Event = tuple[Any, ...]


class RecordingWriter:
    """Records what the cycle asks the wire to do; `drain` can be held closed to test write backpressure."""

    def __init__(self, *, trailers: bool = True, informational: bool = True, sendfile: bool = False) -> None:
        self.can_send_trailers = trailers
        self.can_send_informational = informational
        self.can_sendfile = sendfile
        self.events: list[Event] = []
        self.consumed: list[int] = []
        self.body_requests = 0
        self.drains = 0
        self.drain_open = asyncio.Event()
        self.drain_open.set()

    def request_body(self) -> None:
        self.body_requests += 1

    def body_consumed(self, size: int) -> None:
        self.consumed.append(size)

    def send_informational(self, status: int, headers: Headers) -> None:
        self.events.append(("info", status, headers))

    def start_response(self, status: int, headers: Headers) -> None:
        self.events.append(("start", status, headers))

    def send_data(self, data: bytes) -> None:
        self.events.append(("data", data))

    async def drain(self) -> None:
        self.drains += 1
        await self.drain_open.wait()

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        file.seek(offset)
        self.events.append(("file", file.read(count)))

    def end_response(self, trailers: Headers | None) -> None:
        self.events.append(("end", trailers))

    def abort_response(self) -> None:
        self.events.append(("abort",))

    @property
    def status(self) -> int:
        return next(int(event[1]) for event in self.events if event[0] == "start")

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(next(event[2] for event in self.events if event[0] == "start"))

    @property
    def body(self) -> bytes:
        return b"".join(event[1] for event in self.events if event[0] in ("data", "file"))


App = Callable[[Scope, Receive, Send], Awaitable[None]]


def make_cycle(
    app: App,
    *,
    method: str = "GET",
    config: Config = QUIET,
    writer: RecordingWriter | None = None,
    content_length: int | None = None,
    body_expected: bool = False,
    records: list[AccessRecord] | None = None,
) -> tuple[RequestCycle, RecordingWriter]:
    writer = writer or RecordingWriter()
    scope = build_http_scope(
        conn=CONN,
        method=method,
        http_version="1.1",
        target=b"/path?q=1",
        headers=[(b"host", b"example.com")],
        root_path="",
        state=None,
        extensions={},
    )
    context = ServerContext(app=app, config=config, access_log=records.append if records is not None else None)
    cycle = RequestCycle(scope, writer, context, content_length=content_length, body_expected=body_expected)
    return cycle, writer


def run_app(app: App, **kwargs: Any) -> RecordingWriter:
    async def main() -> RecordingWriter:
        cycle, writer = make_cycle(app, **kwargs)
        await asyncio.wait_for(cycle.run(), 2)
        assert cycle.response_complete
        return writer

    return asyncio.run(main())


def respond(status: int = 200, body: bytes = b"hello", headers: Headers | None = None) -> App:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        await send({"type": "http.response.body", "body": body})

    return app


# ---- responses -----------------------------------------------------------------------------------------


def test_single_body_response_gets_content_length_and_default_headers() -> None:
    records: list[AccessRecord] = []
    writer = run_app(respond(headers=[(b"content-type", b"text/plain")]), config=Config(), records=records)
    status, headers = writer.events[0][1], writer.events[0][2]
    assert status == 200
    names = [name for name, _ in headers]
    assert names[0] == b"content-type"
    assert dict(headers)[b"content-length"] == b"5"
    assert dict(headers)[b"server"] == b"gunicorn-asgi"
    assert b"date" in dict(headers)
    assert writer.events[1:] == [("data", b"hello"), ("end", None)]
    (record,) = records
    assert (record.method, record.path, record.query_string, record.status) == ("GET", "/path", b"q=1", 200)
    assert (record.response_bytes, record.client, record.scheme) == (5, ("192.0.2.1", 1234), "http")
    assert record.duration >= 0


def test_app_headers_are_not_duplicated() -> None:
    own = [(b"Content-Length", b"5"), (b"Server", b"mine"), (b"Date", b"Thu, 01 Jan 1970 00:00:00 GMT")]
    writer = run_app(respond(headers=own), config=Config())
    assert writer.events[0] == ("start", 200, own)


def test_streaming_response_has_no_content_length() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        for part in (b"a", b"", b"b"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body"})

    writer = run_app(app)
    assert writer.events == [("start", 200, []), ("data", b"a"), ("data", b"b"), ("end", None)]
    assert writer.drains == 2  # one drain per piece of data handed to the wire


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    writer = run_app(respond(status, b"ignored"))
    assert writer.events == [("start", status, []), ("end", None)]


def test_reset_content_has_no_body_and_says_so() -> None:
    declared = [(b"Content-Length", b"7"), (b"x-kept", b"1")]
    writer = run_app(respond(205, b"ignored", headers=declared))
    assert writer.events == [("start", 205, [(b"x-kept", b"1"), (b"content-length", b"0")]), ("end", None)]


def test_reset_content_with_trailers_leaves_the_framing_to_the_protocol() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 205,
                "headers": [(b"content-length", b"3")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"abc"})
        await send({"type": "http.response.trailers", "headers": [(b"x-a", b"1")]})

    writer = run_app(app)
    assert writer.events == [("start", 205, []), ("end", [(b"x-a", b"1")])]


def test_head_response_has_the_get_headers_but_no_body() -> None:
    records: list[AccessRecord] = []
    writer = run_app(respond(body=b"twelve bytes"), method="HEAD", records=records)
    assert writer.events == [("start", 200, [(b"content-length", b"12")]), ("end", None)]
    assert records[0].response_bytes == 0


def test_early_hints() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload; as=style"]})
        await respond()(scope, receive, send)

    writer = run_app(app)
    assert writer.events[0] == ("info", 103, [(b"link", b"</style.css>; rel=preload; as=style")])
    assert writer.events[1][:2] == ("start", 200)
    silent = run_app(app, writer=RecordingWriter(informational=False))
    assert silent.events[0][:2] == ("start", 200)


def test_trailers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-a", b"1")], "more_trailers": True})
        await send({"type": "http.response.trailers", "headers": [(b"x-b", b"2")]})

    writer = run_app(app)
    # No content-length: the protocol needs a framing that can carry trailers.
    assert writer.events == [("start", 200, []), ("data", b"data"), ("end", [(b"x-a", b"1"), (b"x-b", b"2")])]
    plain = run_app(app, writer=RecordingWriter(trailers=False))
    assert plain.events[-1] == ("end", None)  # the protocol cannot carry them: dropped, response still ends


@pytest.mark.parametrize("sendfile", [False, True])
def test_pathsend(tmp_path: Path, sendfile: bool) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"0123456789" * 30000)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.pathsend", "path": str(path)})

    writer = run_app(app, writer=RecordingWriter(sendfile=sendfile))
    assert writer.headers[b"content-length"] == b"300000"
    assert writer.body == path.read_bytes()
    assert writer.events[-1] == ("end", None)
    head = run_app(app, method="HEAD")
    assert head.body == b""
    assert head.headers[b"content-length"] == b"300000"


# ---- message order and validation ------------------------------------------------------------------------


def _failing_sequence(*messages: Message) -> App:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    return app


START = {"type": "http.response.start", "status": 200}
BODY = {"type": "http.response.body", "body": b"x"}


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        pytest.param([BODY], "unexpected ASGI message 'http.response.body' while awaiting", id="body-first"),
        pytest.param([START, START], "'http.response.start' while sending http.response.body", id="start-twice"),
        pytest.param([{"status": 200}], "without a 'type'", id="no-type"),
        pytest.param([None], "without a 'type'", id="not-a-mapping"),
        pytest.param([{"type": "http.response.nonsense"}], "'http.response.nonsense'", id="unknown-type"),
        pytest.param([START, {"type": "http.response.trailers"}], "trailers", id="trailers-not-announced"),
        pytest.param([{"type": "http.response.start", "status": "200"}], "'status' must be an int", id="str"),
        pytest.param([{"type": "http.response.start", "status": 99}], "from 200 to 599", id="status-99"),
        pytest.param([{"type": "http.response.start", "status": 600}], "from 200 to 599", id="status-600"),
        pytest.param([{"type": "http.response.start", "status": True}], "'status'", id="status-bool"),
        pytest.param(
            [{"type": "http.response.start", "status": 200, "headers": [("a", "b")]}], "bytes", id="str-h"
        ),
        pytest.param([{"type": "http.response.start", "status": 200, "headers": [(b"a",)]}], "pair", id="h-tuple"),
        pytest.param(
            [{"type": "http.response.start", "status": 200, "headers": b"a: b"}], "iterable", id="h-bytes"
        ),
        pytest.param([START, {"type": "http.response.body", "body": "text"}], "must be bytes", id="str-body"),
        pytest.param([{"type": "http.response.early_hint", "links": ["</a>"]}], "links", id="str-links"),
        pytest.param([START, {"type": "http.response.pathsend", "path": b"/x"}], "must be a str", id="pathsend"),
    ],
)
def test_invalid_messages_raise_and_become_a_500(
    messages: list[Message], error: str, caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await _failing_sequence(*messages)(scope, receive, send)
        except InvalidMessage as exc:
            raised.append(exc)
            raise

    with caplog.at_level(logging.ERROR, "asgi_core.error"):
        writer = run_app(app)
    assert len(raised) == 1
    assert error in str(raised[0])
    assert writer.status == 500
    assert writer.body == b"Internal Server Error"
    assert writer.headers[b"connection"] == b"close"
    assert writer.events[-1] == ("end", None)
    assert "Exception in ASGI application" in caplog.text


def test_messages_may_be_any_mapping() -> None:
    # ASGI messages are dicts, and the cycle reads them as dicts; another mapping is copied into one first.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(MappingProxyType({"type": "http.response.start", "status": 201}))  # type: ignore[arg-type]
        await send(MappingProxyType({"type": "http.response.body", "body": b"read-only"}))  # type: ignore[arg-type]

    writer = run_app(app)
    assert writer.status == 201
    assert writer.body == b"read-only"


def test_send_after_response_complete_is_an_error_and_changes_nothing() -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond()(scope, receive, send)
        try:
            await send(BODY)
        except InvalidMessage as exc:
            errors.append(exc)

    writer = run_app(app)
    assert "while response complete" in str(errors[0])
    assert writer.events[-2:] == [("data", b"hello"), ("end", None)]


def test_exception_before_start_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)  # started but nothing reached the wire yet: still a clean 500
        raise RuntimeError("boom")

    records: list[AccessRecord] = []
    with caplog.at_level(logging.ERROR, "asgi_core.error"):
        writer = run_app(app, records=records)
    assert writer.status == 500
    assert writer.headers[b"content-length"] == b"21"
    assert records[0].status == 500
    assert "boom" in caplog.text


def test_exception_after_start_aborts(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, "asgi_core.error"):
        writer = run_app(app)
    assert writer.events == [("start", 200, []), ("data", b"partial"), ("abort",)]
    assert "boom" in caplog.text


def test_returning_without_a_response_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return

    with caplog.at_level(logging.ERROR, "asgi_core.error"):
        writer = run_app(app)
    assert writer.status == 500
    assert "returned without completing the response" in caplog.text


def test_returning_mid_body_aborts() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send({"type": "http.response.body", "body": b"a", "more_body": True})

    assert run_app(app).events[-1] == ("abort",)


def test_writer_refusing_headers_is_a_500() -> None:
    class Picky(RecordingWriter):
        def start_response(self, status: int, headers: Headers) -> None:
            if any(name == b"bad" for name, _ in headers):
                raise ValueError("illegal header")
            super().start_response(status, headers)

    writer = run_app(respond(headers=[(b"bad", b"x")]), writer=Picky())
    assert writer.status == 500


def test_response_state_enum_follows_the_messages() -> None:
    async def main() -> None:
        seen: list[ResponseState] = []
        cycle: RequestCycle

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(cycle.state)
            await send({**START, "trailers": True})
            seen.append(cycle.state)
            await send({"type": "http.response.body"})
            seen.append(cycle.state)
            await send({"type": "http.response.trailers"})
            seen.append(cycle.state)

        cycle, _ = make_cycle(app)
        await cycle.run()
        assert seen == [
            ResponseState.AWAITING_START,
            ResponseState.AWAITING_BODY,
            ResponseState.AWAITING_TRAILERS,
            ResponseState.COMPLETE,
        ]

    asyncio.run(main())


# ---- request body and disconnects ------------------------------------------------------------------------


def test_request_body_is_delivered_with_backpressure_calls() -> None:
    async def main() -> None:
        received: list[Message] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            while True:
                message = await receive()
                received.append(message)
                if not message.get("more_body"):
                    break
            await respond()(scope, receive, send)

        cycle, writer = make_cycle(app, body_expected=True)
        cycle.task = asyncio.ensure_future(cycle.run())
        await asyncio.sleep(0)
        assert writer.body_requests == 1  # the app waits for body: the protocol may send 100 Continue now
        cycle.feed_body(b"ab")
        cycle.feed_body(b"cd")
        assert cycle.buffered_body == 4
        await asyncio.sleep(0)
        cycle.feed_body(b"")  # empty data is no message
        cycle.feed_body(b"ef")
        cycle.end_body()
        await asyncio.wait_for(cycle.task, 1)
        assert b"".join(m["body"] for m in received) == b"abcdef"
        assert received[-1]["more_body"] is False
        assert all(m["type"] == "http.request" for m in received)
        assert sum(writer.consumed) == 6
        assert writer.body_requests == 1

    asyncio.run(main())


def test_body_less_request_then_disconnect_after_response() -> None:
    async def main() -> None:
        messages: list[Message] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            messages.append(await receive())
            await respond()(scope, receive, send)
            messages.append(await asyncio.wait_for(receive(), 1))

        cycle, writer = make_cycle(app)
        await cycle.run()
        assert messages == [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]
        assert writer.body_requests == 0

    asyncio.run(main())


def test_waiting_receive_is_woken_by_response_completion_elsewhere() -> None:
    async def main() -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()

            async def watch() -> Message:
                return await receive()

            watcher = asyncio.ensure_future(watch())
            await asyncio.sleep(0)
            await respond()(scope, receive, send)
            assert await asyncio.wait_for(watcher, 1) == {"type": "http.disconnect"}

        cycle, _ = make_cycle(app)
        await asyncio.wait_for(cycle.run(), 2)

    asyncio.run(main())


def test_disconnect_is_delivered_and_send_then_raises_oserror() -> None:
    async def main() -> None:
        outcome: list[object] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            first = await receive()
            outcome.append(first)
            outcome.append(await receive())
            try:
                await send(START)
            except OSError as exc:
                outcome.append(exc)

        cycle, writer = make_cycle(app, body_expected=True)
        cycle.task = asyncio.ensure_future(cycle.run())
        cycle.feed_body(b"partial")
        await asyncio.sleep(0)
        cycle.connection_lost()
        cycle.feed_body(b"ignored")  # nothing arrives after the client is gone
        await asyncio.wait_for(cycle.task, 1)
        assert outcome[0] == {"type": "http.request", "body": b"partial", "more_body": True}
        assert outcome[1] == {"type": "http.disconnect"}
        assert isinstance(outcome[2], ClientDisconnected)
        assert isinstance(outcome[2], OSError)
        assert writer.events == [("abort",)]  # no 500 for a client that is not there

    asyncio.run(main())


def test_peer_half_close_reports_disconnect_but_the_response_still_goes_out() -> None:
    async def main() -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            assert (await receive())["more_body"] is False
            assert await receive() == {"type": "http.disconnect"}
            await respond()(scope, receive, send)

        cycle, writer = make_cycle(app)
        cycle.task = asyncio.ensure_future(cycle.run())
        cycle.peer_closed()
        await asyncio.wait_for(cycle.task, 1)
        assert writer.body == b"hello"

    asyncio.run(main())


def test_an_app_told_of_a_half_close_may_end_without_an_error_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> RecordingWriter:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            assert (await receive())["more_body"] is False
            assert await receive() == {"type": "http.disconnect"}  # and it stops, as apps do when told so

        cycle, writer = make_cycle(app)
        cycle.task = asyncio.ensure_future(cycle.run())
        cycle.peer_closed()
        await asyncio.wait_for(cycle.task, 1)
        assert cycle.response_complete
        return writer

    with caplog.at_level(logging.DEBUG, "asgi_core.error"):
        writer = asyncio.run(main())
    assert writer.status == 500  # the half-closed client may still read: it learns there is no answer
    assert "returned without completing" not in caplog.text


def test_disconnect_grace_period_cancels_an_app_that_does_not_notice() -> None:
    async def main() -> None:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send(START)
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        cycle, writer = make_cycle(app, config=Config(disconnect_grace_period=0.05))
        cycle.task = asyncio.ensure_future(cycle.run())
        await started.wait()
        cycle.connection_lost()
        cycle.connection_lost()  # idempotent
        await asyncio.sleep(0.01)
        assert not cancelled.is_set()  # not before the grace period
        await asyncio.wait_for(cycle.task, 1)  # the cycle swallows its own cancellation
        assert cancelled.is_set()
        assert writer.events[-1] == ("abort",)

    asyncio.run(main())


def test_no_grace_period_means_never_cancelled() -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await release.wait()

        cycle, writer = make_cycle(app, config=Config(disconnect_grace_period=None))
        cycle.task = asyncio.ensure_future(cycle.run())
        await asyncio.sleep(0)
        cycle.connection_lost()
        await asyncio.sleep(0.05)
        assert not cycle.task.done()
        release.set()
        await asyncio.wait_for(cycle.task, 1)
        assert writer.events == [("abort",)]

    asyncio.run(main())


def test_disconnect_after_a_complete_response_cancels_nothing() -> None:
    async def main() -> None:
        finished = asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await respond()(scope, receive, send)
            await asyncio.sleep(0.05)  # background work after the response
            finished.set()

        cycle, writer = make_cycle(app, config=Config(disconnect_grace_period=0))
        cycle.task = asyncio.ensure_future(cycle.run())
        for _ in range(10):  # let the app send its response
            await asyncio.sleep(0)
        assert cycle.response_complete
        cycle.connection_lost()
        await asyncio.wait_for(cycle.task, 1)
        assert finished.is_set()
        assert ("abort",) not in writer.events

    asyncio.run(main())


def test_server_cancellation_propagates() -> None:
    async def main() -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await asyncio.sleep(30)

        cycle, _ = make_cycle(app)
        task = asyncio.ensure_future(cycle.run())
        await asyncio.sleep(0)
        task.cancel()  # the server shutting down, not a vanished client
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_body_limit_by_content_length_never_runs_the_app() -> None:
    called: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(True)

    writer = run_app(
        app, config=Config(max_request_body_size=10, date_header=False), content_length=11, body_expected=True
    )
    assert not called
    assert writer.status == 413
    assert writer.body == reason_phrase(413)  # the canned error: its reason phrase
    assert writer.headers[b"connection"] == b"close"
    exact = run_app(respond(), config=Config(max_request_body_size=10), content_length=10, body_expected=True)
    assert exact.status == 200


def test_body_limit_while_streaming_stops_the_app() -> None:
    async def main() -> None:
        seen: list[bytes] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                seen.append(message["body"])
                if not message["more_body"]:
                    await respond()(scope, receive, send)  # must never run on a truncated body
                    return

        cycle, writer = make_cycle(app, config=Config(max_request_body_size=8), body_expected=True)
        cycle.task = asyncio.ensure_future(cycle.run())
        cycle.feed_body(b"12345")
        await asyncio.sleep(0)
        cycle.feed_body(b"67890")
        cycle.end_body()
        await asyncio.wait_for(cycle.task, 1)
        assert seen == [b"12345"]
        assert writer.status == 413
        assert writer.events[-1] == ("end", None)

    asyncio.run(main())


def test_send_waits_for_drain() -> None:
    async def main() -> None:
        sent = asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send(START)
            await send({"type": "http.response.body", "body": b"big", "more_body": True})
            sent.set()
            await send({"type": "http.response.body"})

        writer = RecordingWriter()
        writer.drain_open.clear()
        cycle, _ = make_cycle(app, writer=writer)
        task = asyncio.ensure_future(cycle.run())
        await asyncio.sleep(0.02)
        assert not sent.is_set()  # held by the writer's backpressure
        writer.drain_open.set()
        await asyncio.wait_for(task, 1)
        assert sent.is_set()

    asyncio.run(main())


def test_writer_failing_to_end_the_response_aborts_it(caplog: pytest.LogCaptureFixture) -> None:
    class Strict(RecordingWriter):
        def end_response(self, trailers: Headers | None) -> None:
            raise ValueError("too little data for declared Content-Length")

    records: list[AccessRecord] = []
    with caplog.at_level(logging.ERROR, "asgi_core.error"):
        writer = run_app(respond(headers=[(b"content-length", b"100")]), writer=Strict(), records=records)
    assert writer.events[-1] == ("abort",)
    assert len(records) == 1
    assert "Content-Length" in caplog.text


def test_body_limit_after_the_response_started_aborts_and_is_logged() -> None:
    async def main() -> None:
        records: list[AccessRecord] = []
        done: list[int] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send(START)
            await send({"type": "http.response.body", "body": b"early", "more_body": True})
            while (await receive())["type"] == "http.request":
                pass

        cycle, writer = make_cycle(
            app, config=Config(max_request_body_size=4), body_expected=True, records=records
        )
        cycle._context.on_request_done = lambda: done.append(1)
        cycle.task = asyncio.ensure_future(cycle.run())
        await asyncio.sleep(0.01)
        cycle.feed_body(b"12345")
        await asyncio.wait_for(cycle.task, 1)
        assert writer.events[-1] == ("abort",)
        assert len(records) == 1
        assert done == [1]  # the server's request accounting (max_requests) sees it

    asyncio.run(main())


# ---- writers that take a whole response in one call ---------------------------------------------------------


class WholeWriter(RecordingWriter):
    """A writer offering `send_whole`; `fail_with` makes it raise, as a protocol refusing the response would."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        super().__init__()
        self.fail_with = fail_with

    def send_whole(self, status: int, headers: Headers, body: bytes) -> None:
        if isinstance(self.fail_with, ValueError):
            raise self.fail_with  # a refused head: nothing was sent
        self.events.append(("whole", status, headers, body))
        if self.fail_with is not None:
            raise self.fail_with  # the head went; the rest could not


def test_a_response_in_one_message_goes_to_send_whole_in_one_call() -> None:
    writer = run_app(respond(201, b"hello", [(b"x-a", b"1")]), writer=WholeWriter(), config=Config())
    [(kind, status, headers, body)] = writer.events
    assert (kind, status, body) == ("whole", 201, b"hello")
    names = [name for name, _ in headers]
    assert names[0] == b"x-a"
    assert {b"server", b"date", b"content-length"} <= set(names)
    assert dict(headers)[b"content-length"] == b"5"


def test_streamed_and_head_responses_keep_the_usual_calls_or_drop_the_body() -> None:
    async def streamed(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    writer = run_app(streamed, writer=WholeWriter())
    assert [event[0] for event in writer.events] == ["start", "data", "data", "end"]
    head = run_app(respond(body=b"hello"), writer=WholeWriter(), method="HEAD")
    [(kind, _, headers, body)] = head.events
    assert (kind, body) == ("whole", b"")
    assert dict(headers)[b"content-length"] == b"5"  # what a GET would get, as HEAD asks


def test_a_head_send_whole_refuses_is_a_500_with_nothing_sent_before_it() -> None:
    writer = run_app(respond(), writer=WholeWriter(fail_with=ValueError("bad header")))
    assert [event[0] for event in writer.events] == ["start", "data", "end"]  # the cycle's own 500
    assert writer.status == 500


def test_a_failure_after_the_head_cuts_the_response() -> None:
    async def main() -> tuple[RecordingWriter, RequestCycle]:
        cycle, writer = make_cycle(respond(), writer=WholeWriter(fail_with=RuntimeError("too short")))
        await asyncio.wait_for(cycle.run(), 2)
        return writer, cycle

    writer, cycle = asyncio.run(main())
    assert [event[0] for event in writer.events] == ["whole", "abort"]
    assert cycle.response_complete
    assert cycle.response_started


def test_alt_svc_is_advertised_unless_the_app_sends_its_own() -> None:
    async def main(app: App) -> RecordingWriter:
        cycle, writer = make_cycle(app)
        cycle._context.alt_svc = b'h3=":443"; ma=86400'
        await asyncio.wait_for(cycle.run(), 2)
        return writer

    assert asyncio.run(main(respond())).headers[b"alt-svc"] == b'h3=":443"; ma=86400'
    own = respond(headers=[(b"Alt-Svc", b"clear")])
    headers = asyncio.run(main(own)).events[0][2]
    assert [value for name, value in headers if name.lower() == b"alt-svc"] == [b"clear"]


def test_after_http_disconnect_the_app_is_never_handed_body_again() -> None:
    """Found by the state machine (test_core_cycle_states.py): a body ending after the response was done and
    the app had read http.disconnect came back as http.request."""

    async def main() -> list[Message]:
        cycle, writer = make_cycle(respond(), method="POST", body_expected=True)
        await cycle.run()
        seen = [await cycle.receive()]
        cycle.feed_body(b"late")
        cycle.end_body()
        seen.append(await asyncio.wait_for(cycle.receive(), 1))
        assert writer.consumed == [4], "dropped body must still be acknowledged to the protocol"
        return seen

    assert asyncio.run(main()) == [{"type": "http.disconnect"}, {"type": "http.disconnect"}]
