"""The frames nearly every WebSocket message travels in, read and written without wsproto's event objects.

A message from a browser or a client library is almost always one frame: final, masked, text or binary, no
extension bits, a length in the 7- or 16-bit form. `FrameReader` reads exactly those, from the start of a
connection, and hands everything from the first other frame on (a ping, a close, a fragment, an extension
bit, a non-minimal length, text that is not UTF-8, a message over the size limit) to wsproto, for good. Since
wsproto then starts at a frame boundary with no message in progress, it sees what it would have seen had it
read every frame itself: no state of its own was skipped, because a complete unfragmented data frame changes
none. Sending works the same way: a data message on an open connection without extensions is one unmasked
frame (RFC 6455 section 5.2), which changes no wsproto state either.
"""

from __future__ import annotations

import codecs
import struct

_FINAL_TEXT, _FINAL_BINARY = 0x81, 0x82  # FIN set, no RSV bits, opcode 1 or 2
_MASKED = 0x80
_LENGTH_7_MAX, _LENGTH_16, _LENGTH_64 = 125, 126, 127
_LENGTH_16_MAX = 0xFFFF


class HandOff(Exception):
    """The next frame is not one `FrameReader` reads: wsproto takes the connection from it on."""


def unmask(payload: bytes | bytearray, key: bytes | bytearray) -> bytes:
    """RFC 6455 section 5.3, as one XOR of big integers (in C) rather than a byte at a time."""
    size = len(payload)
    if not size:
        return b""
    keystream = (bytes(key) * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(size, "big")


class FrameReader:
    """Complete, unfragmented, masked data frames without extension bits, from a client; see the module."""

    __slots__ = ("_buffer", "_checked", "_decoder", "_limit")

    def __init__(self, limit: int | None) -> None:
        self._buffer = bytearray()
        self._limit = limit
        # Payload bytes of the text frame still arriving that are known to be valid UTF-8 so far.
        self._checked = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_message(self) -> str | bytes | None:
        """The next message, or None until its frame is complete. Raises `HandOff`, consuming nothing."""
        buffer = self._buffer
        available = len(buffer)
        if available < 2:  # noqa: PLR2004 - the two fixed header bytes
            return None
        first, second = buffer[0], buffer[1]
        if first not in (_FINAL_TEXT, _FINAL_BINARY) or not second & _MASKED:
            raise HandOff
        length = second & 0x7F
        if length <= _LENGTH_7_MAX:
            start = 6
        elif length == _LENGTH_16:
            if available < 4:  # noqa: PLR2004 - the header up to its 16-bit length
                return None
            length = (buffer[2] << 8) | buffer[3]
            if length <= _LENGTH_7_MAX:
                raise HandOff  # a longer form than needed is a protocol error: wsproto says which
            start = 8
        else:
            raise HandOff  # 64-bit lengths are for messages far past the common case
        if self._limit is not None and length > self._limit:
            raise HandOff  # wsproto's size limit closes with 1009
        end = start + length
        if available < end:
            if first == _FINAL_TEXT and available > start + self._checked:
                self._check_partial_text(start, available)
            return None
        if self._checked:  # a load, not a store, for the frames that arrived whole
            self._checked = 0
        payload = unmask(buffer[start:end], buffer[start - 4 : start])
        if first == _FINAL_TEXT:
            try:
                message: str | bytes = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise HandOff from None  # wsproto closes with 1007
        else:
            message = payload
        del buffer[:end]
        return message

    def _check_partial_text(self, start: int, available: int) -> None:
        """Fail fast on UTF-8 (RFC 6455 section 8.1): invalid text in a frame that is still arriving is handed
        to wsproto at once, which reads the frame again from its start and closes with 1007, instead of waiting
        for the rest. Only the bytes new since the last call are decoded."""
        buffer, checked = self._buffer, self._checked
        if not checked:
            self._decoder.reset()
        shift = checked % 4  # the masking key continues where the checked part ended
        key = bytes(buffer[start - 4 + shift : start]) + bytes(buffer[start - 4 : start - 4 + shift])
        try:
            self._decoder.decode(unmask(buffer[start + checked : available], key), False)
        except UnicodeDecodeError:
            raise HandOff from None
        self._checked = available - start

    def take_rest(self) -> bytes:
        """What is buffered, for wsproto to read from here on."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest


def data_frame(message: str | bytes) -> bytes:
    """One final, unmasked text or binary frame: what a server sends (RFC 6455 section 5.2)."""
    if isinstance(message, str):
        first, payload = _FINAL_TEXT, message.encode("utf-8")
    else:
        first, payload = _FINAL_BINARY, bytes(message)
    size = len(payload)
    if size <= _LENGTH_7_MAX:
        return bytes((first, size)) + payload
    if size <= _LENGTH_16_MAX:
        return struct.pack("!BBH", first, _LENGTH_16, size) + payload
    return struct.pack("!BBQ", first, _LENGTH_64, size) + payload
