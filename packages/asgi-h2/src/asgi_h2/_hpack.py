"""HPACK for the server: response fields encoded once per process, and repeated request blocks decoded once.

**Responses** are compressed with a dynamic table that is only ever added to, never evicted from.

h2's HPACK encoder (hpack's) looks every field up in a dynamic table it keeps evicting from, and encodes it
again, in Python, for every response. Here a field's encoding is computed once per process and reused by
every connection: a literal that is not indexed depends on the field alone. On top of that, a connection
indexes the fields worth it, those that come back (already seen in this process) and do not change with
every response (not `date`, `content-length`, `etag` and the like), as long as they fit in the peer's table
(SETTINGS_HEADER_TABLE_SIZE, 4096 bytes by default). Nothing is ever evicted, so a field's index follows from
the order it was added in: a repeated `content-type` or a long `content-security-policy` costs one byte per
response after its first, and finding that byte is a dict lookup. A field that does not fit is sent as a
literal; a volatile field always is.

When the peer lowers its table size, the next block empties the table with a size update to 0, then allows
the new size (section 4.2: a decoder such as nghttp2's insists on the update), and indexing starts again.
Fields that carry secrets (`set-cookie`, credentials) are sent as never-indexed literals (section 7.1.3), so
that no intermediary indexes them either, and are neither cached nor indexed.

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
_SIZE_UPDATE: Final = 0x20
#: Sections 6.1 and 6.2: the first byte's pattern for an indexed field, a literal added to the dynamic table,
#: a literal not indexed and one never indexed.
_INDEXED: Final = 0x80
_INCREMENTAL: Final = 0x40
_NOT_INDEXED: Final = 0x00
_NEVER_INDEXED: Final = 0x10
_HUFFMAN: Final = 0x80
#: Section 2.3.3: the static table's 61 entries come first, so the newest dynamic entry is 62.
_FIRST_DYNAMIC: Final = 62
#: Section 4.1: what an entry costs in the table beyond its name and value; section 6.5.2 of RFC 9113: the size
#: a peer's table has until its SETTINGS say otherwise.
_ENTRY_OVERHEAD: Final = 32
_DEFAULT_TABLE_SIZE: Final = 4096
_SENSITIVE: Final = frozenset({b"set-cookie", b"cookie", b"authorization", b"proxy-authorization"})
#: Fields that change from one response to the next: indexed, they would fill the table with entries no later
#: response refers to.
_VOLATILE: Final = frozenset(
    {
        b"age",
        b"content-length",
        b"content-range",
        b"date",
        b"etag",
        b"expires",
        b"last-modified",
        b"location",
        b"server-timing",
        b"traceparent",
        b"x-request-id",
    }
)
#: The process-wide cache of encoded fields is bounded in bytes and starts again when full: the fields that
#: matter come back within a few responses, while a field that changes (a date, a length) would otherwise
#: crowd them out for good. Longer fields are encoded each time.
_CACHE_BYTES: Final = 1 << 20
_CACHEABLE_SIZE: Final = 2048

_huffman: Final = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
_static_fields: dict[tuple[bytes, bytes], int] = {}
_static_names: dict[bytes, int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _static_fields.setdefault((_name, _value), _index)
    _static_names.setdefault(_name, _index)
_cache: dict[tuple[bytes, bytes], bytes] = {}
_cache_size = 0
#: How many recent request blocks a connection remembers, and up to what size (literals decode to new bytes).
_REMEMBERED_BLOCKS: Final = 8
_REMEMBERED_SIZE: Final = 1024


class ResponseEncoder:
    """A stand-in for `hpack.Encoder` on an h2 connection (`conn.encoder`): its dynamic table is only added to.

    h2 calls `encode` for every block it sends and sets `header_table_size` when the peer's
    SETTINGS_HEADER_TABLE_SIZE changes.
    """

    __slots__ = ("_added", "_indexed", "_limit", "_resized", "_used")

    def __init__(self) -> None:
        self._limit = _DEFAULT_TABLE_SIZE
        self._used = 0
        #: The fields in the table, oldest first, and each one's encoding as an indexed field. The encodings
        #: change with every addition (the newest entry is 62); additions are rare, lookups are per response.
        self._added: list[tuple[bytes, bytes]] = []
        self._indexed: dict[tuple[bytes, bytes], bytes] = {}
        self._resized = False

    @property
    def header_table_size(self) -> int:
        return self._limit

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        # A larger allowance changes nothing (our table may stay smaller than the peer allows); a smaller one
        # empties it, and the next block says so.
        if value < self._limit:
            self._limit = value
            self._used = 0
            self._added.clear()
            self._indexed.clear()
            self._resized = True

    def encode(self, headers: Iterable[tuple[bytes, bytes]], huffman: bool = True) -> bytes:  # noqa: FBT001, FBT002 - hpack's signature
        parts: list[bytes] = []
        if self._resized:
            self._resized = False
            parts.append(_TABLE_SIZE_ZERO)
            if self._limit:
                parts.append(_integer(self._limit, 5, _SIZE_UPDATE))
        indexed = self._indexed
        for name, value in headers:
            key = (name, value)
            encoded = indexed.get(key)
            if encoded is not None:
                parts.append(encoded)
                continue
            encoded = _cache.get(key)
            if encoded is None:  # the first time this process sends it (or a secret, or a long field)
                parts.append(_remember(key))
            elif name not in _VOLATILE and key not in _static_fields and self._add(key):
                parts.append(_encode_incremental(name, value))
            else:
                parts.append(encoded)
        return b"".join(parts)

    def _add(self, key: tuple[bytes, bytes]) -> bool:
        """Index `key` if it fits without evicting anything, and takes no more than half the table."""
        size = len(key[0]) + len(key[1]) + _ENTRY_OVERHEAD
        if self._used + size > self._limit or 2 * size > self._limit:
            return False
        self._used += size
        self._added.append(key)
        indexed = self._indexed
        for position, field in enumerate(reversed(self._added)):
            indexed[field] = _integer(_FIRST_DYNAMIC + position, 7, _INDEXED)
        return True


def _remember(key: tuple[bytes, bytes]) -> bytes:
    global _cache_size  # noqa: PLW0603 - the process-wide cache's byte count
    name, value = key
    encoded = encode_field(name, value)
    size = len(name) + len(value) + len(encoded)
    if size <= _CACHEABLE_SIZE and name not in _SENSITIVE:
        if _cache_size + size > _CACHE_BYTES:
            _cache.clear()
            _cache_size = 0
        _cache[key] = encoded
        _cache_size += size
    return encoded


def encode_field(name: bytes, value: bytes) -> bytes:
    """One field as an indexed static entry, or a literal not indexed (never indexed for secrets)."""
    index = _static_fields.get((name, value))
    if index is not None:
        return bytes((_INDEXED | index,))  # the static table's 61 entries fit the 7-bit prefix
    pattern = _NEVER_INDEXED if name in _SENSITIVE else _NOT_INDEXED
    name_index = _static_names.get(name)
    if name_index is not None:
        return _integer(name_index, 4, pattern) + _string(value)
    return bytes((pattern,)) + _string(name) + _string(value)


def _encode_incremental(name: bytes, value: bytes) -> bytes:
    """Section 6.2.1: a literal the decoder adds to its dynamic table."""
    name_index = _static_names.get(name)
    if name_index is not None:
        return _integer(name_index, 6, _INCREMENTAL) + _string(value)
    return bytes((_INCREMENTAL,)) + _string(name) + _string(value)


def _integer(value: int, prefix_bits: int, pattern: int) -> bytes:
    """Section 5.1: `value` in a prefix of `prefix_bits`, the first byte's other bits set to `pattern`."""
    if value < (1 << prefix_bits) - 1:
        return bytes((pattern | value,))
    encoded = encode_integer(value, prefix_bits)
    encoded[0] |= pattern
    return bytes(encoded)


def _string(data: bytes) -> bytes:
    """Section 5.2: a string literal, huffman-coded when that is shorter."""
    coded = _huffman.encode(data)
    if len(coded) < len(data):
        return _integer(len(coded), 7, _HUFFMAN) + coded
    return _integer(len(data), 7, 0) + data


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
