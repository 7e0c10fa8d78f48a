"""`TunnelInbox`: a paused tunnel keeps what arrives in order, with its flow-control credit, until reading resumes."""

from __future__ import annotations

from asgi_core import TunnelInbox


class Inner:
    """Stands for the tunnel: records what reaches the inner protocol, and may stop reading or pause again."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, int]] = []
        self.reading = True
        self.inbox = TunnelInbox(self.deliver, lambda: self.reading)
        self.pause_after: bytes | None = None

    def deliver(self, data: bytes, credit: int) -> None:
        self.received.append((data, credit))
        if data == self.pause_after:
            self.inbox.pause()  # as a protocol may, inside data_received


def test_data_goes_straight_through_while_reading() -> None:
    inner = Inner()
    inner.inbox.receive(b"now", 3)
    assert inner.received == [(b"now", 3)]
    assert inner.inbox.empty
    assert not inner.inbox.resume()  # was not paused: nothing to do


def test_data_waits_while_paused_and_comes_out_in_order_with_its_credit() -> None:
    inner = Inner()
    inner.inbox.pause()
    inner.inbox.receive(b"one", 3)
    inner.inbox.receive(b"two!", 9)  # credit may differ from the length (HTTP/2 padding counts)
    assert inner.received == []
    assert inner.inbox.size == 7
    assert inner.inbox.resume()
    assert inner.received == [(b"one", 3), (b"two!", 9)]
    assert inner.inbox.empty
    assert inner.inbox.size == 0


def test_pausing_again_while_handing_over_stops_the_hand_over_and_keeps_the_order() -> None:
    inner = Inner()
    inner.inbox.pause()
    for piece in (b"a", b"b", b"c"):
        inner.inbox.receive(piece, 1)
    inner.pause_after = b"a"
    inner.inbox.resume()
    assert inner.received == [(b"a", 1)]
    inner.inbox.receive(b"d", 1)  # new data may not overtake what waits
    inner.pause_after = None
    inner.inbox.resume()
    assert [data for data, _ in inner.received] == [b"a", b"b", b"c", b"d"]


def test_a_tunnel_that_stopped_reading_keeps_what_is_held_for_drop() -> None:
    inner = Inner()
    inner.inbox.pause()
    inner.inbox.receive(b"abc", 12)
    inner.inbox.receive(b"de", 2)
    inner.reading = False
    inner.inbox.resume()
    assert inner.received == []
    assert inner.inbox.drop() == 14  # the credit the peer is still owed
    assert inner.inbox.empty
    assert inner.inbox.size == 0
    assert inner.inbox.drop() == 0
