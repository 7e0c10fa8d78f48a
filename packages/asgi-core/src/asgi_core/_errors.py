"""Exceptions of asgi-core. A module of its own so that it stays interpreted when the hot modules are compiled
(mypyc cannot compile subclasses of built-in exceptions as native classes)."""

from __future__ import annotations


class ClientDisconnected(OSError):
    """Raised by `send` once the client is gone, as the ASGI spec asks (a subclass of OSError)."""


class ConfigError(ValueError):
    """A setting has a value outside what it accepts; the message names the setting and the accepted values."""

    def __init__(self, setting: str, value: object, accepted: str) -> None:
        self.setting = setting
        self.value = value
        self.accepted = accepted
        super().__init__(f"invalid value for {setting}: {value!r}; accepted: {accepted}")


class InvalidMessage(RuntimeError):
    """The app sent an ASGI message that is malformed or out of order."""


class PeerError(Exception):
    """The client broke its protocol or one of our limits; `status` is the HTTP answer it gets (where the
    protocol still allows one), `str(error)` the reason, for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class HeadRejected(PeerError):
    """A request head breaks a limit or a rule: answered with `status` (HTTP/1.1 then closes the connection,
    HTTP/2 ends the stream) and never shown to the app."""
