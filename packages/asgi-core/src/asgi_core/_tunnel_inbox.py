"""What a tunnel holds for its inner protocol while that protocol has paused reading.

A tunnel is a stream of a multiplexed connection (HTTP/2's or HTTP/3's extended CONNECT, RFC 8441 and 9220)
presented to a protocol, say a WebSocket one, as its transport. When that protocol pauses reading, the data its
stream still receives waits here, in order, each piece with the flow-control credit that reading it returns to
the peer; not returning the credit is what makes the peer stop sending.
"""

from __future__ import annotations

from collections import deque


class TunnelInbox:
    """Pieces of a stream's body, held while `paused` (and after, until `take` has handed them all over)."""

    __slots__ = ("_pieces", "paused", "size")

    def __init__(self) -> None:
        #: The inner protocol asked not to be given data (`pause_reading`).
        self.paused = False
        #: Bytes held.
        self.size = 0
        self._pieces: deque[tuple[bytes, int]] = deque()

    @property
    def empty(self) -> bool:
        return not self._pieces

    def must_hold(self) -> bool:
        """Whether new data must wait: reading is paused, or older data waits (order is kept)."""
        return self.paused or bool(self._pieces)

    def hold(self, data: bytes, credit: int) -> None:
        self._pieces.append((data, credit))
        self.size += len(data)

    def take(self) -> tuple[bytes, int] | None:
        """The oldest piece and its credit, unless reading is paused or nothing is held."""
        if self.paused or not self._pieces:
            return None
        data, credit = self._pieces.popleft()
        self.size -= len(data)
        return data, credit

    def drop(self) -> int:
        """Forget everything held (the stream is over); the credit it carried, for the peer."""
        credit = sum(credit for _, credit in self._pieces)
        self._pieces.clear()
        self.size = 0
        return credit
