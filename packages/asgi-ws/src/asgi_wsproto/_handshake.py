"""The opening handshake: checking a client's request and building the answer's headers.

Two wire forms reach the same checks. Over HTTP/1.1 (RFC 6455 section 4.2.1) the request is a GET carrying
`Upgrade: websocket`, `Connection: Upgrade`, a `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`, and the
answer is `101 Switching Protocols` with `Sec-WebSocket-Accept`. Over HTTP/2 (RFC 8441 section 5) it is an
extended CONNECT with `:protocol = websocket`: no key and no accept token, the answer is a `200`. Subprotocol and
extension negotiation are the same in both.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Iterable

from asgi_core import Headers, InvalidMessage, Message, UpgradeRequest, has_control_character, is_token
from asgi_core import validate_headers as validate_message_headers
from wsproto.utilities import generate_accept_token

WEBSOCKET_VERSION = b"13"
_KEY_BYTES = 16
#: Headers the server owns in its answer; an app's `websocket.accept` may not set them.
_RESERVED_ANSWER_HEADERS = frozenset(
    {b"sec-websocket-protocol", b"sec-websocket-accept", b"sec-websocket-extensions", b"upgrade", b"connection"}
)


class HandshakeError(Exception):
    """The request is not a WebSocket opening handshake we can serve; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str, headers: Headers | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.headers: Headers = headers or []


def header_tokens(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Comma-separated tokens of every `name` header, lower-cased, in order."""
    return [
        token.strip().lower()
        for header, value in headers
        if header == name
        for token in value.split(b",")
        if token.strip()
    ]


def wants_websocket(request: UpgradeRequest) -> bool:
    """Whether HTTP itself asks for a protocol switch here (else the `Upgrade` header is to be ignored).

    RFC 9110 section 7.8: a server ignores `Upgrade` in an HTTP/1.0 request and one not named in `Connection`.
    Such a request is ordinary HTTP and goes to the app as such. Anything that does ask to switch to websocket
    is ours from then on, and if it is not a valid handshake it gets its 4xx here, never an `http` scope.
    """
    if request.http_version in ("2", "3"):
        return request.method == "CONNECT"
    return request.http_version == "1.1" and b"upgrade" in header_tokens(request.headers, b"connection")


def check_request(request: UpgradeRequest) -> bytes | None:
    """Validate the handshake; returns the `Sec-WebSocket-Key` (None over HTTP/2) or raises HandshakeError."""
    headers = request.headers
    tunnelled = request.http_version in ("2", "3")
    if not tunnelled and request.method != "GET":
        raise HandshakeError(400, f"a WebSocket handshake must be a GET request, not {request.method}")
    versions = [value.strip() for name, value in headers if name == b"sec-websocket-version"]
    if not versions:
        raise HandshakeError(400, "missing Sec-WebSocket-Version header")
    if versions != [WEBSOCKET_VERSION]:
        # RFC 6455 section 4.2.2: name the versions we speak so the client can retry with one of them.
        raise HandshakeError(
            426, "unsupported WebSocket version (only 13 is)", [(b"sec-websocket-version", WEBSOCKET_VERSION)]
        )
    if tunnelled:
        return None
    keys = [value.strip() for name, value in headers if name == b"sec-websocket-key"]
    if len(keys) != 1:
        raise HandshakeError(400, "a WebSocket handshake needs exactly one Sec-WebSocket-Key header")
    try:
        decoded = b64decode(keys[0], validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != _KEY_BYTES:
        raise HandshakeError(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    return keys[0]


def answer_headers(
    key: bytes | None, subprotocol: str | None, extensions: str | None, extra: Headers
) -> tuple[int, Headers]:
    """Status and headers accepting the handshake: 101 with the accept token over HTTP/1.1, 200 over HTTP/2."""
    headers: Headers = []
    if key is not None:
        headers += [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", generate_accept_token(key)),
        ]
    if subprotocol:
        headers.append((b"sec-websocket-protocol", subprotocol.encode("ascii")))
    if extensions:
        headers.append((b"sec-websocket-extensions", extensions.encode("ascii")))
    headers += extra
    return (101 if key is not None else 200), headers


def validate_accept(message: Message) -> tuple[str | None, Headers]:
    """The subprotocol and extra headers of a `websocket.accept` message, checked."""
    subprotocol = message.get("subprotocol")
    if subprotocol is not None and (not isinstance(subprotocol, str) or not is_token(subprotocol.encode())):
        raise InvalidMessage(f"websocket.accept 'subprotocol' must be a token string or None, got {subprotocol!r}")
    headers = validate_headers(message.get("headers", ()))
    for name, _ in headers:
        if name.lower() in _RESERVED_ANSWER_HEADERS:
            raise InvalidMessage(
                f"websocket.accept 'headers' may not set {name.decode('latin-1')!r}; the server sets it "
                "(use the 'subprotocol' key to choose a subprotocol)"
            )
    return subprotocol, headers


def validate_headers(headers: object) -> Headers:
    """An app's header list as (name, value) byte pairs safe to put on the wire, else InvalidMessage.

    asgi-core checks the shape; the handshake is written as raw bytes rather than through h11 or h2, so the
    characters are checked here too.
    """
    result = validate_message_headers(headers)
    for name, value in result:
        if not is_token(name) or has_control_character(value):
            raise InvalidMessage(f"header {(name, value)!r} has characters not allowed in HTTP")
    return result
