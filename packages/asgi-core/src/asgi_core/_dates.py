"""The `Date` header value, formatted once per second rather than once per response."""

from __future__ import annotations

import time
from email.utils import formatdate

_cached_second = -1
_cached_value = b""


def http_date() -> bytes:
    global _cached_second, _cached_value  # noqa: PLW0603 - a one-slot cache is the point
    now = int(time.time())
    if now != _cached_second:
        _cached_second = now
        _cached_value = formatdate(now, usegmt=True).encode("ascii")
    return _cached_value
