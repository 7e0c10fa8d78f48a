"""The exceptions of the request head checks, in a module of their own: they subclass a built-in exception, which
mypyc cannot compile as a native class, so this module stays interpreted in the compiled wheel."""

from __future__ import annotations


class MalformedRequest(Exception):
    """A request header block that breaks RFC 9113 (sections 8.2 and 8.3): a stream error, PROTOCOL_ERROR."""


class HeadRejected(Exception):
    """A request breaks a limit; `status` is the response the stream gets instead of reaching the app."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
