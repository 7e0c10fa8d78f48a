"""One HTTP request through an ASGI app: the rules HTTP/1.1, HTTP/2 and uWSGI share, written once.

A protocol parses a request, builds its scope, and hands the cycle a `ResponseWriter`: the few operations
that put a response on its wire. It then feeds the request body in (`feed_body`, `end_body`) and reports a
lost client (`connection_lost`). The cycle owns everything ASGI: the order of messages (a state enum and a
transition table), `http.disconnect`, the 500 when the app fails before starting a response and the abort
after, bodyless responses (HEAD, 1xx, 204, 304, and 205 with its zero length), request-body backpressure and size limit, the grace period
before the task of a vanished client is cancelled, trailers, pathsend, early hints and access-log data.

Hot module: `receive` and `send` run for every request (the speed tricks it may use are listed in
docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import asyncio
import enum
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO, Final

from ._context import AccessRecord, ServerContext
from ._dates import http_date
from ._deadline import Deadline
from ._errors import ClientDisconnected, InvalidMessage
from ._messages import FRAMING_FIELDS, as_dict, reset_content_headers, validate_headers, validate_status
from ._request_state import END_OWED, TRANSITIONS, RequestEvent, RequestState
from ._response_writer import ResponseWriter
from ._responses import error_response
from ._types import Headers, Message, Scope
from ._wakeup import Wakeup

_NO_BODY_STATUSES: Final = frozenset({204, 304})
_RESET_CONTENT: Final = 205
_FILE_CHUNK: Final = 256 * 1024


class ResponseState(enum.Enum):
    AWAITING_START = "awaiting http.response.start"
    AWAITING_BODY = "sending http.response.body"
    AWAITING_TRAILERS = "sending http.response.trailers"
    COMPLETE = "response complete"

    # Looked up with the message type on every send: hash by identity, in C, not with Enum's Python `__hash__`.
    __hash__ = object.__hash__


_Handler = Callable[["RequestCycle", dict[str, Any]], "Awaitable[None] | None"]


class RequestCycle:
    """Runs the app for one request. Create it, then `asyncio.create_task(cycle.run())`."""

    __slots__ = (
        "_body",
        "_bytes_sent",
        "_context",
        "_disconnect_timer",
        "_disconnected",
        "_expects_trailers",
        "_news",
        "_pending_head",
        "_received",
        "_request",
        "_response_headers",
        "_send_body",
        "_send_whole",
        "_started_at",
        "_trailers",
        "_writer",
        "buffered_body",
        "content_length",
        "response_started",
        "scope",
        "state",
        "status",
        "task",
    )

    def __init__(
        self,
        scope: Scope,
        writer: ResponseWriter,
        context: ServerContext,
        content_length: int | None = None,
        body_expected: bool = True,  # noqa: FBT001, FBT002 - positional for the HTTP/1.1 protocol (see its call)
    ) -> None:
        self.scope = scope
        self._writer = writer
        self._context = context
        self.content_length = content_length
        self.state = ResponseState.AWAITING_START
        self.status = 0
        self.task: asyncio.Task[None] | None = None
        self._body: list[bytes] = []
        #: Body bytes received and not yet read by the app.
        self.buffered_body = 0
        self._received = 0
        # What `receive` owes the app once the buffered body is out: moved by `_request_state`'s table, indexed
        # inline (a move the table lacks is a KeyError; `advance` is its checked form, for cold code and tests).
        self._request: RequestState = RequestState.UNREAD if body_expected else RequestState.ENDED
        # The client is gone (not merely half-closed): `send` fails, and the grace timer may run.
        self._disconnected = False
        self._news = Wakeup()
        self._pending_head: tuple[int, Headers] | None = None
        self._response_headers: Headers = []
        self._send_body = scope["method"] != "HEAD"
        self._expects_trailers = False
        self._trailers: Headers = []
        #: Whether any of the response reached the protocol (after that, failures can only abort).
        self.response_started = False
        self._bytes_sent = 0
        self._disconnect_timer: Deadline | None = None
        self._started_at = time.monotonic()
        # A writer may offer `send_whole(status, headers, body)`: start, one body and end in one call, for the
        # response an app sends in one message. It raises ValueError only for a head it refuses (nothing sent).
        self._send_whole: Callable[[int, Headers, bytes], None] | None = getattr(writer, "send_whole", None)

    # ---- protocol side -------------------------------------------------------------------------------

    @property
    def request_state(self) -> RequestState:
        return self._request

    def peer_closed(self) -> None:
        """The client finished sending (half-close): `receive` says so, but the response still goes out."""
        self._request = TRANSITIONS[self._request][RequestEvent.CLOSE]
        self._news.wake()

    def feed_body(self, data: bytes) -> bool:
        """Buffer body for the app. True when what it has not read yet is over `request_body_buffer`: a
        protocol without flow control of its own stops reading until the writer's `body_consumed`."""
        if not data:
            return False
        if self._request is RequestState.CLOSED:
            self._writer.body_consumed(len(data))  # nobody will read it: let the protocol's credit flow
            return False
        self._received += len(data)
        limit = self._context.config.max_request_body_size
        if limit is not None and self._received > limit:
            self._reject_oversized_body()
            return False
        self._body.append(data)
        self.buffered_body += len(data)
        self._news.wake()
        return self.buffered_body > self._context.config.request_body_buffer

    def _reject_oversized_body(self) -> None:
        self._disconnected = True
        self._request = RequestState.CLOSED  # the app must not see a truncated body as complete
        self._news.wake()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if not self.response_started:
            self._reply_error(413)
        elif self.state is not ResponseState.COMPLETE:
            self.state = ResponseState.COMPLETE
            self._writer.abort_response()
            self._log_access()

    def end_body(self) -> None:
        self._request = TRANSITIONS[self._request][RequestEvent.END]
        self._news.wake()

    @property
    def response_complete(self) -> bool:
        return self.state is ResponseState.COMPLETE

    def connection_lost(self) -> None:
        """The client went away: the app gets `http.disconnect`, and if it is still producing a response it
        has the grace period to notice before its task is cancelled."""
        if self._disconnected:
            return
        self._disconnected = True
        self._request = TRANSITIONS[self._request][RequestEvent.CLOSE]
        self._news.wake()
        grace = self._context.config.disconnect_grace_period
        task = self.task
        if grace is None or task is None or task.done() or self.state is ResponseState.COMPLETE:
            return
        self._disconnect_timer = Deadline(asyncio.get_running_loop(), task.cancel)
        self._disconnect_timer.arm(grace)

    # ---- app side ------------------------------------------------------------------------------------

    async def run(self) -> None:
        config = self._context.config
        limit = config.max_request_body_size
        if limit is not None and self.content_length is not None and self.content_length > limit:
            self._reply_error(413)
            return
        try:
            await self._context.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self._disconnected:
                raise  # cancelled by the server (shutdown), not by our grace timer: let it propagate
            self._finish_abandoned("cancelled after the client disconnected")
        except ClientDisconnected:
            # The app let our own "client went away" error escape: routine, not an application failure.
            self._finish_abandoned("ended by a client disconnect")
        except Exception as exc:
            self._context.logger.exception("Exception in ASGI application", exc_info=exc)
            self._finish_abandoned(None)
        else:
            if self.state is not ResponseState.COMPLETE:
                if self._request is RequestState.CLOSED:
                    # The client stopped first (gone, or half-closed): `receive` says `http.disconnect`, after
                    # which an app may end without answering. Not the app's fault, so not an error in the log.
                    self._finish_abandoned("ended without a response after the client stopped")
                else:
                    self._context.logger.error(
                        "ASGI application returned without completing the response (%s)", self.state.value
                    )
                    self._finish_abandoned(None)
        finally:
            if self._disconnect_timer is not None:
                self._disconnect_timer.close()

    def _finish_abandoned(self, reason: str | None) -> None:
        if self.state is ResponseState.COMPLETE:
            return
        if not self.response_started and not self._disconnected:
            self._reply_error(500)
            return
        if reason:
            self._context.logger.debug("request %s", reason)
        self.state = ResponseState.COMPLETE
        self._writer.abort_response()
        self._log_access()

    async def receive(self) -> Message:
        while True:
            request = self._request
            if self._body:
                data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
                self._body.clear()
                self.buffered_body = 0
                self._writer.body_consumed(len(data))
                if request in END_OWED:
                    self._request = TRANSITIONS[request][RequestEvent.DELIVER]
                    return {"type": "http.request", "body": data, "more_body": False}
                return {"type": "http.request", "body": data, "more_body": True}
            if request in END_OWED:
                self._request = TRANSITIONS[request][RequestEvent.DELIVER]
                return {"type": "http.request", "body": b"", "more_body": False}
            if request is RequestState.CLOSED or self.state is ResponseState.COMPLETE:
                # Once told the exchange is over, the app is never handed body again.
                self._request = TRANSITIONS[request][RequestEvent.CLOSE]
                return {"type": "http.disconnect"}
            if request is RequestState.UNREAD:
                self._request = TRANSITIONS[request][RequestEvent.ASK]
                self._writer.request_body()
            await self._news.wait()

    async def send(self, message: Message) -> None:
        if self._disconnected and self.state is not ResponseState.COMPLETE:
            raise ClientDisconnected("the client disconnected")
        # Messages are read as the dicts ASGI specifies (compiled, a dict is read without method calls); any
        # other mapping is copied into one.
        fields = message if type(message) is dict else as_dict(message)
        message_type = fields.get("type")
        if message_type is None:
            raise InvalidMessage(f"ASGI message without a 'type': {message!r}")
        if message_type == "http.response.body" and self.state is ResponseState.AWAITING_BODY:
            pending = self._on_body(fields)  # the most frequent transition, without the table lookup
        else:
            handler = _TRANSITIONS.get((self.state, message_type))
            if handler is None:
                raise InvalidMessage(f"unexpected ASGI message {message_type!r} while {self.state.value}")
            # Handlers are plain functions: only one that has to wait hands back what to await, so a message
            # that goes straight to the wire costs no coroutine of its own.
            pending = handler(self, fields)
        if pending is not None:
            await pending

    # ---- transitions ---------------------------------------------------------------------------------

    def _on_start(self, message: dict[str, Any]) -> None:
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 599:  # noqa: PLR2004 - what validate_status allows
            status = validate_status(status)  # raises, with the message
        headers = validate_headers(message.get("headers", ()))
        self._expects_trailers = bool(message.get("trailers", False))
        if status in _NO_BODY_STATUSES:
            self._send_body = False
        elif status == _RESET_CONTENT:
            headers = reset_content_headers(headers, trailers=self._expects_trailers)
            self._send_body = False
        self.status = status
        self._response_headers = headers
        self._pending_head = (status, headers)
        self.state = ResponseState.AWAITING_BODY

    def _on_body(self, message: dict[str, Any]) -> Awaitable[None] | None:
        data = message.get("body", b"")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise InvalidMessage(f"http.response.body 'body' must be bytes, got {type(data).__name__}")
            data = bytes(data)
        more_body = message.get("more_body", False)
        if self._pending_head is not None:
            if not more_body and not self._expects_trailers and self._send_whole is not None:
                self._respond_whole(data)
                return None
            self._flush_head(None if more_body else len(data))
        if data and self._send_body:
            self._bytes_sent += len(data)
            self._writer.send_data(data)
            if more_body:
                # Backpressure between the app's messages; after the last one there is nothing left to hold back.
                return self._writer.drain()
        if not more_body:
            self._end_body_stream()
        return None

    def _on_trailers(self, message: dict[str, Any]) -> None:
        self._trailers.extend(validate_headers(message.get("headers", ())))
        if not message.get("more_trailers", False):
            self._complete(self._trailers)

    def _on_pathsend(self, message: dict[str, Any]) -> Awaitable[None]:
        path = message.get("path")
        if not isinstance(path, str):
            raise InvalidMessage("http.response.pathsend 'path' must be a str")
        return self._send_path(path)

    async def _send_path(self, path: str) -> None:
        with open(path, "rb") as file:  # noqa: ASYNC230 - open is a metadata call; reads below go to a thread
            size = os.fstat(file.fileno()).st_size
            if self._pending_head is not None:
                self._flush_head(size)
            if self._send_body and size:
                self._bytes_sent += size
                if self._writer.can_sendfile:
                    await self._writer.send_file(file, 0, size)
                else:
                    await self._copy_file(file)
        self._end_body_stream()

    def _on_early_hint(self, message: dict[str, Any]) -> None:
        links = message.get("links", ())
        if not all(isinstance(link, bytes) for link in links):
            raise InvalidMessage("http.response.early_hint 'links' must be a list of bytes")
        if self._writer.can_send_informational and links:
            self._writer.send_informational(103, [(b"link", link) for link in links])

    # ---- helpers -------------------------------------------------------------------------------------

    def _respond_whole(self, data: bytes) -> None:
        """A response in one message (the common case): head, body and end go to the writer in one call."""
        assert self._pending_head is not None  # noqa: S101 - checked by the caller
        assert self._send_whole is not None  # noqa: S101
        status, headers = self._pending_head
        headers = self._complete_headers(headers, len(data))
        body = data if self._send_body else b""
        self.response_started = True
        self.state = ResponseState.COMPLETE
        try:
            self._send_whole(status, headers, body)
        except ValueError as exc:
            self.response_started = False
            self.state = ResponseState.AWAITING_START  # nothing reached the wire: the app's failure is a 500
            raise InvalidMessage(f"invalid http.response.start: {exc}") from exc
        except Exception:
            # The head went, the rest could not (more or fewer bytes than the declared Content-Length, say):
            # cut the response so that its client sees a failure instead of waiting for bytes that never come.
            self._pending_head = None
            self._writer.abort_response()
            self._news.wake()
            self._log_access()
            raise
        self._pending_head = None
        self._bytes_sent += len(body)
        self._news.wake()
        self._log_access()

    def _flush_head(self, body_length: int | None) -> None:
        if self._pending_head is None:
            return
        status, headers = self._pending_head
        headers = self._complete_headers(headers, body_length)
        try:
            self._writer.start_response(status, headers)
        except ValueError as exc:
            self.state = ResponseState.AWAITING_START  # nothing reached the wire: the app's failure is a 500
            raise InvalidMessage(f"invalid http.response.start: {exc}") from exc
        self._pending_head = None
        self.response_started = True

    def _complete_headers(self, headers: Headers, body_length: int | None) -> Headers:
        config = self._context.config
        has_length = has_server = has_date = False
        for name, _ in headers:
            lowered = name.lower()
            if lowered in FRAMING_FIELDS:
                has_length = True
            elif lowered == b"server":
                has_server = True
            elif lowered == b"date":
                has_date = True
        extra: Headers = []
        if config.server_header and not has_server:
            extra.append((b"server", self._context.server_name))
        if config.date_header and not has_date:
            extra.append((b"date", http_date()))
        alt_svc = self._context.alt_svc
        if alt_svc is not None and not any(name.lower() == b"alt-svc" for name, _ in headers):
            extra.append((b"alt-svc", alt_svc))
        # A response sent in one piece gets a Content-Length rather than chunked framing: cheaper for both
        # sides, and the only framing an HTTP/1.0 client can keep alive on.
        if (
            body_length is not None
            and not has_length
            and not self._expects_trailers
            and self.status not in _NO_BODY_STATUSES
        ):
            extra.append((b"content-length", str(body_length).encode("ascii")))
        return headers + extra if extra else headers

    def _end_body_stream(self) -> None:
        if self._expects_trailers:
            self.state = ResponseState.AWAITING_TRAILERS
        else:
            self._complete(None)

    def _complete(self, trailers: Headers | None) -> None:
        self.state = ResponseState.COMPLETE
        try:
            self._writer.end_response(trailers if self._writer.can_send_trailers else None)
        except Exception:
            # The protocol could not end it (fewer bytes than the declared Content-Length, say): cut the
            # response so that its client sees a failure instead of waiting for bytes that never come.
            self._writer.abort_response()
            raise
        finally:
            self._news.wake()
            self._log_access()

    async def _copy_file(self, file: BinaryIO) -> None:
        loop = asyncio.get_running_loop()
        while chunk := await loop.run_in_executor(None, file.read, _FILE_CHUNK):
            self._writer.send_data(chunk)
            pending = self._writer.drain()
            if pending is not None:
                await pending

    def _reply_error(self, status: int) -> None:
        headers, body = error_response(status)
        headers.append((b"connection", b"close"))
        self.status = status
        self._response_headers = headers
        self._pending_head = None
        self.response_started = True
        self._writer.start_response(status, self._complete_headers(headers, None))
        if self._send_body:
            self._writer.send_data(body)
            self._bytes_sent = len(body)
        self._complete(None)

    def _log_access(self) -> None:
        if self._context.on_request_done is not None:
            self._context.on_request_done()
        log = self._context.access_log
        if log is None:
            return
        log(AccessRecord.of(self.scope, self.status, self._bytes_sent, self._started_at, self._response_headers))


#: The response state machine: anything not in this table is an out-of-order message. It lives outside the class
#: because a class body naming its own methods cannot be compiled by mypyc.
_TRANSITIONS: Final[dict[tuple[ResponseState, str], _Handler]] = {
    (ResponseState.AWAITING_START, "http.response.start"): RequestCycle._on_start,  # noqa: SLF001
    (ResponseState.AWAITING_START, "http.response.early_hint"): RequestCycle._on_early_hint,  # noqa: SLF001
    (ResponseState.AWAITING_BODY, "http.response.body"): RequestCycle._on_body,  # noqa: SLF001
    (ResponseState.AWAITING_BODY, "http.response.pathsend"): RequestCycle._on_pathsend,  # noqa: SLF001
    (ResponseState.AWAITING_TRAILERS, "http.response.trailers"): RequestCycle._on_trailers,  # noqa: SLF001
}
