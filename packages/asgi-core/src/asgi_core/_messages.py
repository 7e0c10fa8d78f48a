"""Validation of what an app sends, so that a malformed message becomes a clear error (and a 500 for its
client) instead of a broken connection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from ._errors import InvalidMessage
from ._types import Headers

_MIN_STATUS, _MAX_STATUS = 200, 599
#: The fields that frame a message body.
FRAMING_FIELDS: Final = frozenset({b"content-length", b"transfer-encoding"})


def validate_status(status: object) -> int:
    if not isinstance(status, int) or isinstance(status, bool) or not _MIN_STATUS <= status <= _MAX_STATUS:
        raise InvalidMessage(f"http.response.start 'status' must be an int from 200 to 599, got {status!r}")
    return status


def validate_headers(headers: object) -> Headers:
    if type(headers) is not list and (not isinstance(headers, Iterable) or isinstance(headers, (bytes, str))):
        raise InvalidMessage(f"'headers' must be an iterable of [name, value] byte pairs, got {headers!r}")
    result: Headers = []
    for item in headers:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise InvalidMessage(f"header must be a [name, value] pair, got {item!r}") from None
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise InvalidMessage(f"header name and value must be bytes, got {item!r}")
        result.append((name, value))
    return result


def as_dict(message: object) -> dict[str, Any]:
    if not isinstance(message, Mapping):
        raise InvalidMessage(f"ASGI message without a 'type': {message!r}")
    return dict(message)


def reset_content_headers(headers: Headers, *, trailers: bool) -> Headers:
    """RFC 9110 section 15.3.6: a 205 response has no content and its framing must say so. Whatever framing
    the app declared goes; a zero Content-Length takes its place (or, with trailers to come, the protocol's
    empty chunked body carries them)."""
    kept = [field for field in headers if field[0].lower() not in FRAMING_FIELDS]
    if not trailers:
        kept.append((b"content-length", b"0"))
    return kept
