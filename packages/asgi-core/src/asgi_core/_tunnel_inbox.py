"""What a tunnel holds for its inner protocol while that protocol has paused reading.

A tunnel is a stream of a multiplexed connection (HTTP/2's or HTTP/3's extended CONNECT, RFC 8441 and 9220)
presented to a protocol, say a WebSocket one, as its transport. When that protocol pauses reading, the data its
stream still receives waits here, in order, each piece with the flow-control credit that reading it returns to
the peer; not returning the credit is what makes the peer stop sending.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class TunnelInbox:
    """A tunnel's inbound data on its way to the inner protocol: handed over at once while reading, held while
    reading is paused, and handed over in order when it resumes.

    `deliver(data, credit)` gives a piece to the inner protocol (and the credit back to the peer);
    `reading()` says whether the tunnel still reads at all (once it is closing, held data stays here until
    `drop`).
    """

    __slots__ = ("_deliver", "_pieces", "_reading", "paused", "size")

    def __init__(self, deliver: Callable[[bytes, int], object], reading: Callable[[], bool]) -> None:
        self._deliver = deliver
        self._reading = reading
        #: The inner protocol asked not to be given data (`pause`).
        self.paused = False
        #: Bytes held.
        self.size = 0
        self._pieces: deque[tuple[bytes, int]] = deque()

    @property
    def empty(self) -> bool:
        return not self._pieces

    def receive(self, data: bytes, credit: int) -> None:
        """Data from the peer: handed over now, or held while reading is paused or older data waits."""
        if self.paused or self._pieces:
            self._pieces.append((data, credit))
            self.size += len(data)
        else:
            self._deliver(data, credit)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> bool:
        """Reading resumes: what is held is handed over, in order, until reading pauses again or the tunnel
        stops reading. False when reading was not paused (nothing to do)."""
        if not self.paused:
            return False
        self.paused = False
        pieces = self._pieces
        while pieces and not self.paused and self._reading():
            data, credit = pieces.popleft()
            self.size -= len(data)
            self._deliver(data, credit)
        return True

    def drop(self) -> int:
        """Forget everything held (the stream is over); the credit it carried, for the peer."""
        credit = sum(credit for _, credit in self._pieces)
        self._pieces.clear()
        self.size = 0
        return credit
