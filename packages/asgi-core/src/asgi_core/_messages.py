"""Validation of what an app sends, so that a malformed message becomes a clear error (and a 500 for its
client) instead of a broken connection."""

from __future__ import annotations

from collections.abc import Iterable

from ._errors import InvalidMessage
from ._types import Headers

_MIN_STATUS, _MAX_STATUS = 200, 599


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
