"""How a connection's last closed streams ended: h2's record of them, bounded, and its closed streams moved there.

h2 keeps, per connection, how each closed stream ended (by END_STREAM or by RST_STREAM) in a `SizeLimitDict`
(`H2Connection._closed_streams`), so that a frame the peer sent before it learnt of the end gets the answer RFC
9113 section 5.1 gives; it moves a closed stream there from its stream table when it next counts the open
streams. `ClosedStreams` stands in for that dict: the same reads and writes (`in`, `[]`, `[]=`, oldest
forgotten first) with no Python-level code on either, at a bound the settings choose
(`_settings.closed_streams_remembered`). `forget_closed` is h2's count and move (`_open_streams`), done here
for the streams `_inbound` opens without h2.
"""

from __future__ import annotations

from collections.abc import ItemsView
from typing import Final

from h2.connection import H2Connection
from h2.stream import StreamClosedBy, StreamState

_CLOSED: Final = StreamState.CLOSED
#: The states h2 counts as open (`STREAM_OPEN`: RFC 9113 section 5.1.2, the reserved states excluded).
_OPEN: Final = StreamState.OPEN
_HALF_CLOSED_REMOTE: Final = StreamState.HALF_CLOSED_REMOTE
_HALF_CLOSED_LOCAL: Final = StreamState.HALF_CLOSED_LOCAL


class ClosedStreams:
    """How the last `limit` closed streams ended, by stream id, as `H2Connection._closed_streams`."""

    __slots__ = ("_ends", "_next", "_order", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ends: dict[int, StreamClosedBy | None] = {}
        #: The ids in `_ends`, a ring once full: `_next` is the oldest, replaced by the next one recorded.
        self._order: list[int] = []
        self._next = 0

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._ends

    def __getitem__(self, stream_id: int) -> StreamClosedBy | None:
        return self._ends[stream_id]

    def __setitem__(self, stream_id: int, closed_by: StreamClosedBy | None) -> None:
        ends = self._ends
        if stream_id not in ends:  # a stream recorded again keeps its place, as in h2's OrderedDict
            order = self._order
            if len(order) < self.limit:
                order.append(stream_id)
            else:
                del ends[order[self._next]]
                order[self._next] = stream_id
                self._next = (self._next + 1) % self.limit
        ends[stream_id] = closed_by

    def __len__(self) -> int:
        return len(self._ends)

    def items(self) -> ItemsView[int, StreamClosedBy | None]:
        return self._ends.items()


def closed_streams(conn: H2Connection) -> ClosedStreams:
    """The record `_settings.new_connection` gave `conn`."""
    record = vars(conn)["_closed_streams"]  # not through h2's annotation, which says dict
    if not isinstance(record, ClosedStreams):
        raise TypeError("an h2 connection not made by asgi_h2._settings.new_connection")
    return record


def forget_closed(conn: H2Connection, record: ClosedStreams) -> int:
    """h2's `open_inbound_streams` on a server connection: the streams the peer opened that are still open, the
    closed ones moved from the stream table to `record` on the way."""
    streams = conn.streams
    open_inbound = 0
    closed = []
    for stream_id, stream in streams.items():
        state = stream.state_machine.state
        if state is _CLOSED:
            closed.append(stream_id)
        elif stream_id & 1 and (state is _OPEN or state is _HALF_CLOSED_REMOTE or state is _HALF_CLOSED_LOCAL):
            open_inbound += 1
    for stream_id in closed:
        record[stream_id] = streams.pop(stream_id).state_machine.stream_closed_by
    return open_inbound
