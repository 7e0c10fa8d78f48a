"""The exceptions of the HTTP/2 request head checks (a refused head is asgi-core's `HeadRejected`) and of the
frame-size guard, in a module of their own: they subclass a built-in exception, which mypyc cannot compile as a
native class, so this module stays interpreted in the compiled wheel."""

from __future__ import annotations


class MalformedRequest(Exception):
    """A request header block that breaks RFC 9113 (sections 8.2 and 8.3): a stream error, PROTOCOL_ERROR."""


class FrameTooLarge(Exception):
    """A frame header announced more than SETTINGS_MAX_FRAME_SIZE (`_inbound`); the connection ends with
    FRAME_SIZE_ERROR."""
