"""HPACK both ways. The response encoder without a dynamic table: what any HPACK decoder (hpack's, here) reads
back is exactly what was encoded, secrets are marked never-indexed, and the table size of 0 is announced when
a decoder needs to hear it. The request decoder that remembers repeated blocks: it reads every sequence of
blocks exactly as hpack's own decoder does, however the dynamic table changes between repeats."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from asgi_core import Receive, Scope, Send
from asgi_h2._hpack import RepeatAwareDecoder, StaticTableEncoder, encode_field
from h2.settings import SettingCodes
from hpack import Decoder, Encoder, HeaderTuple, NeverIndexedHeaderTuple, OversizedHeaderListError
from hypothesis import given
from hypothesis import strategies as st

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, run

SECRETS = (b"set-cookie", b"cookie", b"authorization", b"proxy-authorization")
NAMES = st.one_of(
    st.sampled_from([b":status", b"content-type", b"content-length", b"date", b"server", b"age", *SECRETS]),
    st.binary(min_size=1, max_size=40).map(lambda name: name.lower()),
)
FIELDS = st.lists(st.tuples(NAMES, st.binary(max_size=300)), max_size=12)


def decode(decoder: Decoder, block: bytes) -> list[HeaderTuple]:
    return decoder.decode(block, raw=True)  # type: ignore[return-value]


@given(st.lists(FIELDS, min_size=1, max_size=4))
def test_blocks_decode_to_what_was_encoded(blocks: list[list[tuple[bytes, bytes]]]) -> None:
    encoder = StaticTableEncoder()
    decoder = Decoder()
    for fields in blocks:
        decoded = decode(decoder, encoder.encode(fields))
        assert [(bytes(name), bytes(value)) for name, value in decoded] == fields
        for (name, value), header in zip(fields, decoded, strict=True):
            # Secrets are never indexed, but for their empty values, which are static table entries.
            assert header.indexable == (name not in SECRETS or not value)
    assert len(decoder.header_table.dynamic_entries) == 0  # nothing was ever indexed


def test_static_entries_are_one_byte_and_the_table_size_is_announced_first() -> None:
    encoder = StaticTableEncoder()
    first = encoder.encode([(b":status", b"200")])
    assert first == b"\x20\x88"  # size update to 0, then static entry 8
    assert encoder.encode([(b":status", b"200")]) == b"\x88"
    encoder.header_table_size = 512  # the peer changed SETTINGS_HEADER_TABLE_SIZE
    assert encoder.encode([(b":status", b"404")]) == b"\x20\x8d"
    assert encoder.header_table_size == 0


def test_literals_use_huffman_only_when_shorter() -> None:
    # A static name (content-type is entry 31: 15 in the 4-bit prefix, 16 more in the next byte), new value.
    assert encode_field(b"content-type", b"text/plain")[:2] == b"\x0f\x10"
    shorter = encode_field(b"x-aaaaaaaa", b"aaaaaaaaaa")  # 'a' has a 5-bit code
    assert shorter[0] == 0x00  # literal, not indexed, new name
    assert shorter[1] & 0x80  # huffman-coded name
    binary = encode_field(b"x-a", bytes(range(200, 210)))  # long codes: raw is shorter
    assert binary.endswith(bytes(range(200, 210)))


def test_a_client_that_lowers_its_table_size_reads_every_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"x-request", scope["path"].encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> None:
        peer = H2Peer(app, client_settings={SettingCodes.HEADER_TABLE_SIZE: 0})
        for index in range(3):
            result = await peer.response(peer.request(path=f"/{index}"))
            assert result.status == 200
            assert result.header(b"x-request") == f"/{index}".encode()
        assert peer.goaway is None

    run(main())


REQUEST_FIELDS = st.lists(
    st.tuples(
        st.sampled_from([b":method", b":path", b"x-a", b"x-b", b"user-agent", b"cookie"]),
        st.sampled_from([b"GET", b"/", b"/a", b"1", b"2", b"x" * 60]),
    ),
    min_size=1,
    max_size=6,
)


@given(
    st.lists(st.tuples(REQUEST_FIELDS, st.integers(min_value=1, max_value=3)), min_size=1, max_size=8),
    st.sampled_from([0, 100, 200, 4096]),
)
def test_repeated_blocks_decode_as_hpack_decodes_them(
    requests: list[tuple[list[tuple[bytes, bytes]], int]], table: int
) -> None:
    """A client's encoder (with a dynamic table, small ones evicting often) sends each request `repeats` times:
    the repeats become blocks of the same bytes whose meaning changes as the table does."""
    encoder = Encoder()
    encoder.header_table_size = table
    ours, reference = RepeatAwareDecoder(), Decoder()
    for fields, repeats in requests:
        # Some fields are sent as literals that are never indexed, as nghttp2 sends :path: blocks that repeat
        # without being made of indexed fields alone.
        sent = [NeverIndexedHeaderTuple(*field) if field[0] == b":path" else field for field in fields]
        for _ in range(repeats):
            block = encoder.encode(sent)
            assert ours.decode(block, raw=True) == reference.decode(block, raw=True) == fields


def test_a_remembered_block_means_what_the_table_says_now() -> None:
    decoder = RepeatAwareDecoder()
    new_entry = Encoder()
    decoder.decode(new_entry.encode([(b"x-a", b"1")]), raw=True)  # x-a: 1 becomes dynamic entry 62
    assert decoder.decode(b"\xbe", raw=True) == [(b"x-a", b"1")]
    assert decoder.decode(b"\xbe", raw=True) == [(b"x-a", b"1")]  # remembered
    decoder.decode(new_entry.encode([(b"x-b", b"2")]), raw=True)  # x-b: 2 is 62 now, x-a: 1 is 63
    assert decoder.decode(b"\xbe", raw=True) == [(b"x-b", b"2")]


def test_a_remembered_block_still_meets_a_lowered_header_list_limit() -> None:
    decoder = RepeatAwareDecoder()
    decoder.decode(Encoder().encode([(b"x-long", b"v" * 100)]), raw=True)
    assert decoder.decode(b"\xbe", raw=True) == [(b"x-long", b"v" * 100)]
    decoder.max_header_list_size = 64
    with pytest.raises(OversizedHeaderListError):
        decoder.decode(b"\xbe", raw=True)


def test_a_block_that_resizes_the_table_is_decoded_every_time() -> None:
    decoder = RepeatAwareDecoder()
    shrink = b"\x3f\x45\x82"  # table size update to 100, then :method GET
    grow = b"\x3f\xe1\x1f\x82"  # table size update to 4096, then :method GET
    for block, size in ((shrink, 100), (grow, 4096), (shrink, 100)):
        assert decoder.decode(block, raw=True) == [(b":method", b"GET")]
        assert decoder.header_table_size == size
