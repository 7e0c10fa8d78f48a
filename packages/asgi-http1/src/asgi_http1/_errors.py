"""Exceptions of the HTTP/1.1 path. A module of its own so that it stays interpreted when the hot modules are
compiled (mypyc cannot compile subclasses of built-in exceptions as native classes)."""

from __future__ import annotations


class FramingError(RuntimeError):
    """The app's response does not fit HTTP/1.1 framing (more or fewer bytes than it declared, say)."""
