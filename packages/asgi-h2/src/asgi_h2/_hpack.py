"""HPACK for the server: responses compressed without a dynamic table, and repeated request blocks decoded once.

**Responses** are compressed without a dynamic table (RFC 7541 with a table size of 0), as nginx does.

h2's HPACK encoder indexes every field into a per-connection dynamic table, which makes each block depend
on all the blocks before it on that connection: every field has to be looked up and encoded again, in
Python, for every response. Without a dynamic table a field's encoding depends on the field alone (a static
table index, or a literal that is not indexed), so it is computed once per process and reused by every
connection: a block is a join of cached byte strings. The price is size on the wire: a repeated field such
as `content-type: text/plain` costs its literal every time (some 10 to 30 bytes) instead of one byte, and
request headers, which carry the cookies and credentials, are unaffected (they are decoded by h2 with the
client's dynamic table as usual).

The first block of a connection, and the first after the peer changes SETTINGS_HEADER_TABLE_SIZE, starts
with a dynamic table size update to 0 (section 6.3), which tells the client's decoder it may drop its table.
Fields that carry secrets (`set-cookie`, credentials) are sent as never-indexed literals (section 7.1.3), so
that no intermediary indexes them either, and are never cached.

**Requests** are decoded by hpack, with one shortcut. A client that repeats a request (polling, gRPC calls,
proxies, load generators) sends the same bytes again once its fields are in the dynamic table: indexed
fields, and literals it chose not to index (nghttp2 never indexes `:path`). Such a block leaves the table as
it was, so while no other block changes the table, the same bytes decode to the same fields: they are looked
up, not decoded.

The huffman code, the integer encoding, the static table and the decoder are hpack's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from hpack import Decoder, HeaderTuple
from hpack.hpack import encode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

#: Section 6.3: a dynamic table size update (001xxxxx) to 0.
_TABLE_SIZE_ZERO: Final = b"\x20"
#: Section 6.2.2 and 6.2.3: the first byte's pattern for a literal not indexed, and never indexed.
_NOT_INDEXED: Final = 0x00
_NEVER_INDEXED: Final = 0x10
_INDEXED: Final = 0x80
_HUFFMAN: Final = 0x80
_SENSITIVE: Final = frozenset({b"set-cookie", b"cookie", b"authorization", b"proxy-authorization"})
#: Fields longer than this are encoded each time: they are rare, and would make the cache's memory unbounded.
_CACHEABLE_SIZE: Final = 256
#: When the cache is full it starts again: the fields that matter come back within a few responses, while a
#: field that changes (a date, a length, an etag) would otherwise crowd them out for good.
_CACHE_ENTRIES: Final = 4096

_huffman: Final = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
_static_fields: dict[tuple[bytes, bytes], int] = {}
_static_names: dict[bytes, int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _static_fields.setdefault((_name, _value), _index)
    _static_names.setdefault(_name, _index)
_cache: dict[tuple[bytes, bytes], bytes] = {}
#: How many recent request blocks a connection remembers, and up to what size (literals decode to new bytes).
_REMEMBERED_BLOCKS: Final = 8
_REMEMBERED_SIZE: Final = 1024


class StaticTableEncoder:
    """A stand-in for `hpack.Encoder` on an h2 connection (`conn.encoder`): encodes header blocks statelessly.

    h2 calls `encode` for every block it sends and sets `header_table_size` when the peer's
    SETTINGS_HEADER_TABLE_SIZE changes; the table stays at 0 whatever the peer allows, which any limit admits.
    """

    __slots__ = ("_announced",)

    def __init__(self) -> None:
        self._announced = False

    @property
    def header_table_size(self) -> int:
        return 0

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        # A table of 0 fits in any size the peer allows, but a decoder whose limit was lowered may insist on
        # a size update at the start of the next block (nghttp2 does): the update to 0 is sent again.
        self._announced = False

    def encode(self, headers: Iterable[tuple[bytes, bytes]], huffman: bool = True) -> bytes:  # noqa: FBT001, FBT002 - hpack's signature
        parts: list[bytes] = []
        if not self._announced:
            self._announced = True
            parts.append(_TABLE_SIZE_ZERO)
        cache = _cache
        for name, value in headers:
            key = (name, value)
            encoded = cache.get(key)
            if encoded is None:
                encoded = encode_field(name, value)
                if len(name) + len(value) <= _CACHEABLE_SIZE and name not in _SENSITIVE:
                    if len(cache) >= _CACHE_ENTRIES:
                        cache.clear()
                    cache[key] = encoded
            parts.append(encoded)
        return b"".join(parts)


def encode_field(name: bytes, value: bytes) -> bytes:
    """One field as an indexed static entry, or a literal not indexed (never indexed for secrets)."""
    index = _static_fields.get((name, value))
    if index is not None:
        return bytes((_INDEXED | index,))  # the static table's 61 entries fit the 7-bit prefix
    pattern = _NEVER_INDEXED if name in _SENSITIVE else _NOT_INDEXED
    name_index = _static_names.get(name)
    if name_index is not None:
        head = encode_integer(name_index, 4)
        head[0] |= pattern
        return bytes(head) + _string(value)
    return bytes((pattern,)) + _string(name) + _string(value)


def _string(data: bytes) -> bytes:
    """Section 5.2: a string literal, huffman-coded when that is shorter."""
    coded = _huffman.encode(data)
    if len(coded) < len(data):
        length = encode_integer(len(coded), 7)
        length[0] |= _HUFFMAN
        return bytes(length) + coded
    return bytes(encode_integer(len(data), 7)) + data


class _CountedTable(HeaderTable):
    """hpack's table, counting its insertions: with its length and size limit, a version of its contents."""

    def __init__(self) -> None:
        super().__init__()
        self.additions = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.additions += 1
        super().add(name, value)


class RepeatAwareDecoder(Decoder):
    """hpack's `Decoder` (as `conn.decoder`), remembering what recent blocks that left the table alone decoded to.

    A block is remembered with the version of the table it was decoded against, and only if decoding it did
    not change the table; the same bytes against the same version decode to the same fields.
    """

    def __init__(self) -> None:
        super().__init__()
        self.header_table = self._table = _CountedTable()
        self._blocks: dict[bytes, tuple[tuple[int, int, int, int], list[HeaderTuple]]] = {}

    def decode(self, data: bytes, raw: bool = False) -> list[HeaderTuple]:  # noqa: FBT001, FBT002 - hpack's signature
        if not raw or len(data) > _REMEMBERED_SIZE:
            return super().decode(data, raw)  # type: ignore[return-value]  # raw: HeaderTuples of bytes
        block = bytes(data)
        version = self._version()
        known = self._blocks.get(block)
        if known is not None and known[0] == version:
            return list(known[1])
        headers: list[HeaderTuple] = super().decode(block, raw)  # type: ignore[assignment]
        if self._version() == version:
            if len(self._blocks) >= _REMEMBERED_BLOCKS:
                self._blocks.clear()
            self._blocks[block] = (version, headers)
        return list(headers)

    def _version(self) -> tuple[int, int, int, int]:
        # Entries change only by insertion (counted) or eviction (the length drops, or the limit changed);
        # the header list limit is part of it because a remembered block must still be checked against it.
        table = self._table
        return (table.additions, len(table.dynamic_entries), table.maxsize, self.max_header_list_size)
