"""The client connection preface (RFC 9113 section 3.4), checked as its bytes arrive.

h2 checks the preface only once all 24 bytes have come, and closes silently when they differ. A cleartext
port hands over any connection that starts like the preface, so a look-alike (`PRI * HTTP/2.0` and then
something else) must get its answer here: GOAWAY PROTOCOL_ERROR as soon as one byte differs.
"""

from __future__ import annotations

from typing import Final

#: What a client sends first on every HTTP/2 connection.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_PREFACE_SIZE: Final = len(PREFACE)


class PrefaceCheck:
    """Follows the preface through the first bytes of a connection, however they are split."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        #: How many of the preface's bytes have arrived.
        self.seen = 0

    @property
    def complete(self) -> bool:
        return self.seen == _PREFACE_SIZE

    def matches(self, data: bytes) -> bool:
        """Whether `data`, the next bytes of the connection, go on with the preface (or follow its end)."""
        seen = self.seen
        size = min(len(data), _PREFACE_SIZE - seen)
        if data[:size] != PREFACE[seen : seen + size]:
            return False
        self.seen = seen + size
        return True
