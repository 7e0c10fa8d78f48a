"""HPACK both ways. The response encoder, whose dynamic table is only added to: whatever the sequence of
blocks and of the peer's table sizes, any HPACK decoder (hpack's, here) reads back exactly what was encoded;
fields that return are indexed, secrets and volatile fields never are, and a lowered table size is announced.
The request decoder that remembers repeated blocks: it reads every sequence of blocks exactly as hpack's own
decoder does, however the dynamic table changes between repeats."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from asgi_core import Receive, Scope, Send
from asgi_h2._hpack import RepeatAwareDecoder, ResponseEncoder, encode_field
from h2.settings import SettingCodes
from hpack import Decoder, Encoder, HeaderTuple, NeverIndexedHeaderTuple, OversizedHeaderListError
from hypothesis import given
from hypothesis import strategies as st

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, run

SECRETS = (b"set-cookie", b"cookie", b"authorization", b"proxy-authorization")
VOLATILE = (b"date", b"content-length", b"etag")
NAMES = st.one_of(
    st.sampled_from([b":status", b"content-type", b"server", b"x-frame-options", *VOLATILE, *SECRETS]),
    st.binary(min_size=1, max_size=40).map(lambda name: name.lower()),
)
# Few values, so that fields come back (and get indexed); some long, so that the table fills up.
VALUES = st.one_of(st.sampled_from([b"", b"200", b"text/plain", b"x" * 300, b"y" * 1500]), st.binary(max_size=60))
FIELDS = st.lists(st.tuples(NAMES, VALUES), max_size=12)
TABLE_SIZES = st.one_of(st.none(), st.sampled_from([0, 64, 512, 4096, 65536]))


def decode(decoder: Decoder, block: bytes) -> list[HeaderTuple]:
    return decoder.decode(block, raw=True)  # type: ignore[return-value]


@given(st.lists(st.tuples(FIELDS, TABLE_SIZES), min_size=1, max_size=12))
def test_blocks_decode_to_what_was_encoded(blocks: list[tuple[list[tuple[bytes, bytes]], int | None]]) -> None:
    encoder = ResponseEncoder()
    decoder = Decoder()
    allowed = 4096
    for fields, table_size in blocks:
        if table_size is not None:  # the peer's SETTINGS_HEADER_TABLE_SIZE, acknowledged before this block
            encoder.header_table_size = table_size
            decoder.max_allowed_table_size = table_size
            allowed = min(allowed, table_size)
        decoded = decode(decoder, encoder.encode(fields))
        assert [(bytes(name), bytes(value)) for name, value in decoded] == fields
        assert decoder.header_table_size <= allowed  # a lowered size was announced before anything else
        for (name, value), header in zip(fields, decoded, strict=True):
            # Secrets are never indexed, but for their empty values, which are static table entries.
            assert header.indexable == (name not in SECRETS or not value)
        in_table = {name for name, _ in decoder.header_table.dynamic_entries}
        assert not in_table & {*SECRETS, *VOLATILE}
        if table_size is not None:
            allowed = table_size


def test_a_field_that_returns_costs_one_byte() -> None:
    policy = (b"content-security-policy", b"default-src 'self'; img-src *; " + uuid.uuid4().hex.encode())
    date = (b"date", b"Sat, 21 Nov 2026 " + uuid.uuid4().hex.encode())
    first, second = ResponseEncoder(), ResponseEncoder()
    once = first.encode([(b":status", b"200"), policy, date])  # new to the process: a literal, not indexed
    assert once[:1] == b"\x88"  # :status 200 is static entry 8
    assert len(once) > 40
    decoder = Decoder()
    decode(decoder, once)
    added = second.encode([policy, date])  # seen before: this connection adds it to the table
    assert decode(decoder, added) == [policy, date]
    third = second.encode([policy, date])
    assert third[:1] == b"\xbe"  # dynamic entry 62: the policy, one byte
    assert decode(decoder, third) == [policy, date]
    assert [bytes(name) for name, _ in decoder.header_table.dynamic_entries] == [policy[0]]  # never the date


def test_a_lowered_table_size_empties_the_table_first() -> None:
    field = (b"x-stable", uuid.uuid4().hex.encode())
    encoder, decoder = ResponseEncoder(), Decoder()
    for _ in range(3):
        decode(decoder, encoder.encode([field]))
    assert len(decoder.header_table.dynamic_entries) == 1
    encoder.header_table_size = 100_000  # a larger allowance: nothing changes, nothing is announced
    assert encoder.encode([field]) == b"\xbe"
    encoder.header_table_size = 512
    block = encoder.encode([field])
    assert block[:3] == b"\x20\x3f\xe1"  # size 0, then 512 (31 in the prefix, 481 more)
    decoder.max_allowed_table_size = 512
    assert decode(decoder, block) == [field]
    assert decoder.header_table_size == 512
    encoder.header_table_size = 0
    assert encoder.encode([field])[:1] == b"\x20"
    assert encoder.encode([field])[:1] != b"\xbe"  # with no table, the field stays a literal


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


def test_a_full_table_is_never_evicted_from() -> None:
    # Six fields of 1,000 bytes as the table counts them: four fit in 4,096, the rest stay literals.
    fields = [(f"x-big-{index}".encode(), uuid.uuid4().hex.encode() * 29 + b"x" * 33) for index in range(6)]
    assert all(len(name) + len(value) + 32 == 1000 for name, value in fields)
    ResponseEncoder().encode(fields)  # seen once in this process
    encoder, decoder = ResponseEncoder(), Decoder()
    for _ in range(3):
        assert decode(decoder, encoder.encode(fields)) == fields
    assert len(decoder.header_table.dynamic_entries) == 4
    assert len(encoder.encode(fields[:4])) == 4  # one byte each
