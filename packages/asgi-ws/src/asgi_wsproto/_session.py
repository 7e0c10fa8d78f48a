"""The ASGI side of one WebSocket: the app task, `receive` and `send`, as a state machine.

The app's messages drive a small table, `(state, message type) -> handler`; anything not in it is an ASGI
error (`InvalidMessage`, which the app sees raised from `send` and which, uncaught, becomes a 500 before the
handshake is answered or a 1011 close after). Once the connection is closing or gone, `websocket.send` and the
like raise `ClientDisconnected` (an OSError, as the spec asks) and `websocket.close` is a no-op.

    HANDSHAKE --accept--> OPEN --close / peer close / server close--> CLOSED
        |----close (403)------------------------------------------->|
        |--http.response.start--> RESPONDING --last body---------->|

The wire (the asyncio protocol in `_protocol.py`) feeds received messages in (`deliver`) and reports the end of
the connection (`connection_closed`); the queue of received messages is bounded by `websocket_max_queue`,
beyond which the wire stops reading from the client until the app catches up.

Hot module: this code runs for every message (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import ClassVar, Protocol

from asgi_core import (
    AccessRecord,
    ClientDisconnected,
    Deadline,
    FlowControl,
    Headers,
    InvalidMessage,
    Message,
    RequestCycle,
    ResponseWriter,
    Scope,
    ServerContext,
    Wakeup,
    error_response,
)

from ._handshake import validate_accept

#: Close codes an app may send (RFC 6455 section 7.4 and the IANA registry); 1004-1006 and 1015 are reserved.
_APP_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)}) | frozenset(range(3000, 5000))
_MAX_REASON_BYTES = 123
_KNOWN_TYPES = frozenset(
    {"websocket.accept", "websocket.send", "websocket.http.response.start", "websocket.http.response.body"}
)


class SessionState(enum.Enum):
    HANDSHAKE = "awaiting websocket.accept"
    RESPONDING = "sending a websocket.http.response"
    OPEN = "connected"
    CLOSED = "closed"


class Wire(Protocol):
    """What the session needs from the connection it runs on."""

    flow: FlowControl

    def accept(self, subprotocol: str | None, headers: Headers) -> int:
        """Answer the handshake and open the frame layer; returns the status sent (101, or 200 over HTTP/2)."""

    def response_writer(self) -> ResponseWriter:
        """A writer for an HTTP response given instead of the WebSocket."""

    def send_message(self, data: str | bytes) -> None: ...

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (the session has already stopped sending)."""

    def queue_drained(self) -> None:
        """The app took a message from a full queue: reading from the client may go on."""

    def caught_up(self) -> None:
        """The app took the last message queued when `wait_caught_up` was called."""


_Handler = Callable[["WebSocketSession", Message], Awaitable[None]]


class WebSocketSession:
    """Runs the app for one WebSocket. `start()` once the handshake request is known to be valid."""

    def __init__(self, wire: Wire, scope: Scope, context: ServerContext, method: str) -> None:
        self.scope = scope
        self.state = SessionState.HANDSHAKE
        self.task: asyncio.Task[None] | None = None
        self._wire = wire
        self._context = context
        self._method = method
        self._max_queue = context.config.websocket_max_queue
        self._queue: deque[Message] = deque([{"type": "websocket.connect"}])
        self._closed: Message | None = None  # the websocket.disconnect, once the connection is over
        self._disconnect_seen = False
        self._news = Wakeup()
        self._cycle: RequestCycle | None = None
        self._writer: ResponseWriter | None = None
        self._grace_timer: Deadline | None = None
        self._cancelled_by_us = False
        self._notify_caught_up = False
        self._started_at = time.monotonic()
        #: The handshake's answer (status, headers) once the app accepted; the session is logged when it ends.
        self._accepted: tuple[int, Headers] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    # ---- wire side -----------------------------------------------------------------------------------

    @property
    def queue_full(self) -> bool:
        return len(self._queue) >= self._max_queue

    @property
    def accepting_messages(self) -> bool:
        """Received data is for the app only while it has not itself closed (or been closed)."""
        return self.state is SessionState.OPEN

    def wait_caught_up(self) -> bool:
        """True if messages wait for the app: the wire's `caught_up` is called once it has taken them all."""
        self._notify_caught_up = bool(self._queue)
        return self._notify_caught_up

    def deliver(self, message: Message) -> None:
        self._queue.append(message)
        self._news.wake()

    def closing(self) -> None:
        """The server is closing the connection (shutdown, keepalive, protocol error): no more sends."""
        if self.state is SessionState.OPEN:
            self.state = SessionState.CLOSED

    def connection_closed(self, code: int, reason: str = "") -> None:
        """The connection is over; the app gets `websocket.disconnect` with `code` after what is queued."""
        if self._closed is not None:
            return
        self._closed = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.state = SessionState.CLOSED
        if self._accepted is not None:
            self._log_session(code)
        if self._cycle is not None:
            self._cycle.connection_lost()
        self._news.wake()
        grace = self._context.config.disconnect_grace_period
        if grace is not None and self.task is not None and not self.task.done():
            self._grace_timer = Deadline(asyncio.get_running_loop(), self._grace_expired)
            self._grace_timer.arm(grace)

    # ---- app side ------------------------------------------------------------------------------------

    async def receive(self) -> Message:
        while True:
            if self._queue:
                was_full = self.queue_full
                message = self._queue.popleft()
                if was_full and not self.queue_full:
                    self._wire.queue_drained()
                if self._notify_caught_up and not self._queue:
                    self._notify_caught_up = False
                    self._wire.caught_up()
                return message
            if self._closed is not None:
                self._disconnect_seen = True
                return dict(self._closed)
            await self._news.wait()

    async def send(self, message: Message) -> None:
        try:
            message_type = message["type"]
        except (KeyError, TypeError):
            raise InvalidMessage(f"ASGI message without a 'type': {message!r}") from None
        if self.state is SessionState.CLOSED:
            if message_type == "websocket.close":
                return  # closing what is already closed changes nothing
            if message_type in _KNOWN_TYPES:
                raise ClientDisconnected("the WebSocket is closed")
        handler = self._TRANSITIONS.get((self.state, message_type))
        if handler is None:
            raise InvalidMessage(f"unexpected ASGI message {message_type!r} while {self.state.value}")
        await handler(self, message)

    # ---- transitions ---------------------------------------------------------------------------------

    async def _on_accept(self, message: Message) -> None:
        subprotocol, headers = validate_accept(message)
        self.state = SessionState.OPEN
        status = self._wire.accept(subprotocol, headers)
        self._accepted = (status, headers)
        if self._context.on_request_done is not None:
            self._context.on_request_done()

    async def _on_refuse(self, message: Message) -> None:
        # ASGI: a close before accept is a refusal, answered with 403 Forbidden.
        await self._respond(403, canned=False)

    async def _on_denial_start(self, message: Message) -> None:
        self._cycle = cycle = self._new_cycle()
        await cycle.send(
            {"type": "http.response.start", "status": message.get("status"), "headers": message.get("headers", [])}
        )
        self.state = SessionState.RESPONDING

    async def _on_denial_body(self, message: Message) -> None:
        cycle = self._cycle
        assert cycle is not None  # noqa: S101 - RESPONDING is only entered with a cycle
        await cycle.send(
            {
                "type": "http.response.body",
                "body": message.get("body", b""),
                "more_body": message.get("more_body", False),
            }
        )
        if cycle.response_complete:
            self.state = SessionState.CLOSED

    async def _on_send(self, message: Message) -> None:
        text, data = message.get("text"), message.get("bytes")
        payload: str | bytes
        if isinstance(text, str) and data is None:
            payload = text
        elif isinstance(data, (bytes, bytearray, memoryview)) and text is None:
            payload = bytes(data)
        else:
            raise InvalidMessage(
                "websocket.send needs exactly one of 'bytes' (bytes) and 'text' (str), got "
                f"bytes={type(data).__name__}, text={type(text).__name__}"
            )
        self._wire.send_message(payload)
        await self._wire.flow.drain()

    async def _on_close(self, message: Message) -> None:
        code = message.get("code", 1000)
        reason = message.get("reason") or ""
        if not isinstance(code, int) or isinstance(code, bool) or code not in _APP_CLOSE_CODES:
            raise InvalidMessage(f"websocket.close 'code' must be 1000-1003, 1007-1014 or 3000-4999, got {code!r}")
        if not isinstance(reason, str) or len(reason.encode()) > _MAX_REASON_BYTES:
            raise InvalidMessage("websocket.close 'reason' must be a str of at most 123 UTF-8 bytes")
        self.state = SessionState.CLOSED
        self._wire.close(code, reason)

    #: The session state machine: anything not in this table is an out-of-order message.
    _TRANSITIONS: ClassVar[dict[tuple[SessionState, str], _Handler]] = {
        (SessionState.HANDSHAKE, "websocket.accept"): _on_accept,
        (SessionState.HANDSHAKE, "websocket.close"): _on_refuse,
        (SessionState.HANDSHAKE, "websocket.http.response.start"): _on_denial_start,
        (SessionState.RESPONDING, "websocket.http.response.body"): _on_denial_body,
        (SessionState.OPEN, "websocket.send"): _on_send,
        (SessionState.OPEN, "websocket.close"): _on_close,
    }

    # ---- running the app -----------------------------------------------------------------------------

    async def _run(self) -> None:
        context = self._context
        try:
            await context.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self._cancelled_by_us:
                raise  # cancelled by the server itself (loop shutdown): let it propagate
            context.logger.debug("WebSocket app cancelled: it did not notice the disconnect in time")
        except Exception as exc:
            context.logger.exception("Exception in ASGI application", exc_info=exc)
            await self._finish(failed=True)
        else:
            await self._finish(failed=False)
        finally:
            if self._grace_timer is not None:
                self._grace_timer.close()

    async def _finish(self, *, failed: bool) -> None:
        """The app is done: make sure the client gets an answer that matches how it ended."""
        state = self.state
        if state is SessionState.OPEN:
            # An app that returns while connected ends the session normally; one that fails is a 1011.
            self.state = SessionState.CLOSED
            self._wire.close(1011 if failed else 1000, "")
        elif state is SessionState.HANDSHAKE:
            if not failed:
                self._context.logger.error("ASGI application returned without accepting or closing the WebSocket")
            await self._respond(500)
        elif state is SessionState.RESPONDING:
            cycle, writer = self._cycle, self._writer
            if cycle is not None and writer is not None and cycle.response_started:
                self.state = SessionState.CLOSED
                writer.abort_response()
            else:
                await self._respond(500)

    async def _respond(self, status: int, *, canned: bool = True) -> None:
        """Answer the handshake with `status`: the canned error (asgi-core's), or an empty body."""
        self.state = SessionState.CLOSED
        self._cycle = cycle = self._new_cycle()
        headers, body = error_response(status) if canned else ([], b"")
        try:
            await cycle.send({"type": "http.response.start", "status": status, "headers": headers})
            await cycle.send({"type": "http.response.body", "body": body})
        except ClientDisconnected:
            pass  # nobody left to tell

    def _new_cycle(self) -> RequestCycle:
        scope = {**self.scope, "type": "http", "method": self._method}
        self._writer = writer = self._wire.response_writer()
        return RequestCycle(scope, writer, self._context, body_expected=False)

    def _grace_expired(self) -> None:
        self._grace_timer = None
        task = self.task
        if task is not None and not task.done() and not self._disconnect_seen:
            self._cancelled_by_us = True
            task.cancel()

    def _log_session(self, close_code: int) -> None:
        """One access-log record per accepted session, when it ends: its duration and close code."""
        context = self._context
        if context.access_log is None or self._accepted is None:
            return
        status, response_headers = self._accepted
        scope = self.scope
        context.access_log(
            AccessRecord(
                method=self._method,
                path=scope["path"],
                query_string=scope["query_string"],
                http_version=scope["http_version"],
                status=status,
                response_bytes=0,
                duration=time.monotonic() - self._started_at,
                client=scope["client"],
                request_headers=scope["headers"],
                response_headers=response_headers,
                scheme=scope["scheme"],
                close_code=close_code,
            )
        )
