"""`TunnelInbox`: a paused tunnel keeps what arrives in order, with its flow-control credit, until reading resumes."""

from __future__ import annotations

from asgi_core import TunnelInbox


def test_data_waits_while_reading_is_paused_and_comes_out_in_order() -> None:
    inbox = TunnelInbox()
    assert not inbox.must_hold()  # reading: data goes straight through
    inbox.paused = True
    assert inbox.must_hold()
    inbox.hold(b"one", 3)
    inbox.hold(b"two!", 9)  # credit may differ from the length (HTTP/2 padding counts)
    assert inbox.size == 7
    assert inbox.take() is None  # still paused
    inbox.paused = False
    assert inbox.must_hold()  # older data first: new data may not overtake it
    assert inbox.take() == (b"one", 3)
    assert inbox.take() == (b"two!", 9)
    assert inbox.take() is None
    assert inbox.empty
    assert inbox.size == 0
    assert not inbox.must_hold()


def test_pausing_again_while_handing_over_stops_the_hand_over() -> None:
    inbox = TunnelInbox()
    inbox.paused = True
    inbox.hold(b"a", 1)
    inbox.hold(b"b", 1)
    inbox.paused = False
    assert inbox.take() == (b"a", 1)
    inbox.paused = True  # the inner protocol paused inside data_received
    assert inbox.take() is None
    assert inbox.size == 1


def test_dropping_returns_the_credit_still_owed_to_the_peer() -> None:
    inbox = TunnelInbox()
    inbox.paused = True
    inbox.hold(b"abc", 12)
    inbox.hold(b"de", 2)
    assert inbox.drop() == 14
    assert inbox.empty
    assert inbox.size == 0
    assert inbox.drop() == 0
