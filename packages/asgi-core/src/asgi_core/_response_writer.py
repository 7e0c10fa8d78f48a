"""The interface between the request cycle and a protocol's wire: what each HTTP-like protocol implements."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import BinaryIO, Protocol

from ._types import Headers


class ResponseWriter(Protocol):
    """The wire side of one request, implemented by each HTTP-like protocol."""

    #: The response may end with trailers (HTTP/2; HTTP/1.1 chunked to a client that sent `TE: trailers`).
    can_send_trailers: bool
    #: 1xx responses other than 100 may be sent (HTTP/1.1 clients, HTTP/2).
    can_send_informational: bool
    #: `send_file` can hand the file to the kernel (cleartext sockets).
    can_sendfile: bool

    def request_body(self) -> None:
        """The app is waiting for body it has not got yet: answer `Expect: 100-continue` if pending."""

    def body_consumed(self, size: int) -> None:
        """The app took `size` buffered body bytes: resume reading or acknowledge flow-control credit."""

    def send_informational(self, status: int, headers: Headers) -> None: ...

    def start_response(self, status: int, headers: Headers) -> None:
        """Begin the response. Raises `ValueError` for headers the protocol cannot send, changing nothing."""

    def send_data(self, data: bytes) -> None: ...

    def drain(self) -> Awaitable[None] | None:
        """What to await until the client has taken enough of what was sent (write backpressure); None when
        nothing needs waiting for, which spares a streamed chunk a coroutine. An `async def` also fits."""

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None: ...

    def end_response(self, trailers: Headers | None) -> None: ...

    def abort_response(self) -> None:
        """The response cannot be completed: make sure the client sees it fail (close, RST_STREAM)."""
