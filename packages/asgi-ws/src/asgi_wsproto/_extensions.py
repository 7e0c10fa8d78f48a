"""Frame-layer extensions plugged into wsproto: the inbound message size limit and permessage-deflate.

wsproto runs every frame through a list of extension objects (header, payload chunks, end of frame), which is
where a limit has to sit to be a limit: a message is refused as its bytes arrive, before it is assembled, and
a compressed message is inflated at most one byte past what is still allowed, so a small "deflate bomb" cannot
make us allocate its inflated size. The limit counts inflated bytes, as `websocket_max_message_size` says.

permessage-deflate (RFC 7692) is our own rather than wsproto's, for that bounded inflation and because its
negotiation must follow section 7.1 to the letter: offers are tried in the client's order, an offer with an
unknown, repeated or out-of-range parameter is declined, and `server_max_window_bits=8` (which zlib cannot
produce a raw stream for) is declined rather than answered with a window the client did not allow.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

EXTENSION_NAME = "permessage-deflate"
_SYNC_TAIL = b"\x00\x00\xff\xff"
_MIN_WINDOW_BITS, _MAX_WINDOW_BITS = 8, 15
#: zlib refuses an 8-bit window for raw deflate; a client limiting us to it gets no compression.
_ZLIB_MIN_WINDOW_BITS = 9
_NO_RSV = RsvBits(False, False, False)
_RSV1 = RsvBits(True, False, False)
#: Frames one message may take. Its size limit cannot bound a message of empty continuation frames, each of
#: which still costs a parse; honest clients fragment far less (Autobahn's worst, 9.3.1, sends 65,536).
MAX_FRAMES_PER_MESSAGE = 2**17
#: Slack for a compressed frame's announced length over the inflated bytes it may carry: deflate's stored
#: blocks add 5 bytes per 65,535, so an honest frame never comes near twice the limit.
_DEFLATE_SLACK = 2


class MessageBudget:
    """Bytes of the current inbound data message, shared by the extensions that see them."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def take(self, size: int) -> bool:
        """Count `size` more bytes; False once the message is over the limit."""
        self.used += size
        return self.used <= self.limit


class MessageSizeLimit(Extension):
    """Closes with 1009 as soon as an inbound message (inflated, if compressed) passes the limit.

    Always enabled and never negotiated: it claims no RSV bit and leaves outbound frames alone. It must come
    after permessage-deflate in the extension list so that it counts inflated bytes.
    """

    name = "asgi-wsproto-message-size-limit"

    def __init__(self, budget: MessageBudget, *, compressed: bool = False) -> None:
        self.budget = budget
        self._control = False
        self._frames = 0
        # Refused from the header alone: a frame announcing more than the message may still hold (an exact
        # bound when nothing is compressed, a generous one when frames may be deflated).
        limit = budget.limit
        self._max_announced = limit * _DEFLATE_SLACK + 1024 if compressed else None

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:
        return False

    def frame_inbound_header(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        # A frame announcing more than is left is refused from its header, with 1009 sent before its payload
        # (gigabytes, perhaps) is waited for; payload is also counted chunk by chunk as it arrives.
        self._control = control = opcode.iscontrol()
        if control:
            return _NO_RSV
        self._frames += 1
        if self._frames > MAX_FRAMES_PER_MESSAGE:
            return CloseReason.MESSAGE_TOO_BIG
        max_announced = self._max_announced
        if max_announced is None:
            if payload_length > self.budget.remaining:
                return CloseReason.MESSAGE_TOO_BIG
        elif payload_length > max_announced:
            return CloseReason.MESSAGE_TOO_BIG
        return _NO_RSV

    def frame_inbound_payload_data(self, proto: FrameDecoder | FrameProtocol, data: bytes) -> bytes | CloseReason:
        if not self._control and not self.budget.take(len(data)):
            return CloseReason.MESSAGE_TOO_BIG
        return data

    def frame_inbound_complete(
        self,
        proto: FrameDecoder | FrameProtocol,
        fin: bool,  # noqa: FBT001 - wsproto's signature
    ) -> bytes | CloseReason | None:
        if fin and not self._control:
            self.budget.used = 0
            self._frames = 0
        return None


@dataclass(frozen=True, slots=True)
class DeflateOffer:
    """The parameters of one permessage-deflate offer the server can accept (RFC 7692 section 7.1)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None  # 0: offered without a value

    def response(self) -> str:
        """The `Sec-WebSocket-Extensions` value accepting this offer. We ask nothing of the client: our inflater
        takes any window up to 15 bits, with or without context takeover."""
        parts = [EXTENSION_NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        return "; ".join(parts)


def negotiate_deflate(headers: list[tuple[bytes, bytes]]) -> DeflateOffer | None:
    """The first permessage-deflate offer in `Sec-WebSocket-Extensions` that we can accept, or None."""
    for name, params in _parse_extensions(b",".join(v for n, v in headers if n == b"sec-websocket-extensions")):
        if name == EXTENSION_NAME:
            offer = _read_offer(params)
            if offer is not None:
                return offer
    return None


def _read_offer(params: list[tuple[str, str | None]]) -> DeflateOffer | None:
    seen: dict[str, str | None] = {}
    for key, value in params:
        if key in seen:
            return None  # RFC 7692 section 7.1: a repeated parameter makes the offer invalid
        seen[key] = value
    flags = {"server_no_context_takeover", "client_no_context_takeover"}
    server_bits: int | None = None
    client_bits: int | None = None
    for key, value in seen.items():
        if key in flags:
            if value is not None:
                return None
        elif key == "server_max_window_bits":
            server_bits = _window_bits(value)
            if server_bits is None or server_bits < _ZLIB_MIN_WINDOW_BITS:
                return None
        elif key == "client_max_window_bits":
            client_bits = 0 if value is None else _window_bits(value)
            if client_bits is None:
                return None
        else:
            return None
    return DeflateOffer(
        server_no_context_takeover="server_no_context_takeover" in seen,
        client_no_context_takeover="client_no_context_takeover" in seen,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )


def _window_bits(value: str | None) -> int | None:
    if value is None or not value.isdigit() or value.startswith("0"):
        return None
    bits = int(value)
    return bits if _MIN_WINDOW_BITS <= bits <= _MAX_WINDOW_BITS else None


def _parse_extensions(value: bytes) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """`a; x=1; y, b` -> [("a", [("x", "1"), ("y", None)]), ("b", [])]; commas in quoted values are kept."""
    text = value.decode("latin-1")
    elements: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            elements.append("".join(current))
            current = []
        else:
            current.append(char)
    elements.append("".join(current))
    result: list[tuple[str, list[tuple[str, str | None]]]] = []
    for element in elements:
        name, *raw_params = (part.strip() for part in element.split(";"))
        if not name:
            continue
        params: list[tuple[str, str | None]] = []
        for raw in raw_params:
            key, eq, raw_value = raw.partition("=")
            param_value = raw_value.strip()
            if len(param_value) >= 2 and param_value[0] == param_value[-1] == '"':  # noqa: PLR2004
                param_value = param_value[1:-1]
            params.append((key.strip().lower(), param_value if eq else None))
        result.append((name.lower(), params))
    return result


class PerMessageDeflate(Extension):
    """permessage-deflate on the server side, as negotiated from one `DeflateOffer`.

    Inbound, RSV1 on the first frame of a data message marks it compressed; its continuation frames carry the
    rest of one deflate stream, and control frames may be interleaved without touching that state. The
    inflater keeps its window across messages, which is correct whether or not the client resets its own.
    """

    name = EXTENSION_NAME

    def __init__(self, offer: DeflateOffer, budget: MessageBudget) -> None:
        self._offer = offer
        self._budget = budget
        self._window_bits = offer.server_max_window_bits or _MAX_WINDOW_BITS
        self._compressor: zlib._Compress | None = None
        self._decompressor = zlib.decompressobj(-_MAX_WINDOW_BITS)
        self._message_compressed: bool | None = None  # None between inbound data messages
        self._starts_message = False  # the frame now arriving is the first of a data message
        self._frame_compressed = False  # its payload is deflate data
        self._frame_is_data = False

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:
        return False  # a server never offers; see negotiate_deflate

    # ---- inbound -------------------------------------------------------------------------------------
    # wsproto calls frame_inbound_header again each time it retries a header that had not fully arrived, so
    # the header hook only looks at state; the message's state changes in the payload and completion hooks.

    def frame_inbound_header(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        self._frame_is_data = not opcode.iscontrol()
        self._starts_message = False
        if not self._frame_is_data or opcode is Opcode.CONTINUATION:
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR  # RSV1 belongs on a message's first frame only
            self._frame_compressed = self._frame_is_data and bool(self._message_compressed)
        elif self._message_compressed is None:
            self._starts_message = True
            self._frame_compressed = rsv.rsv1
        else:
            self._frame_compressed = False  # a new message inside an unfinished one: wsproto rejects it (1002)
        return _RSV1

    def frame_inbound_payload_data(self, proto: FrameDecoder | FrameProtocol, data: bytes) -> bytes | CloseReason:
        if self._starts_message:
            self._starts_message = False
            self._message_compressed = self._frame_compressed
        if not self._frame_compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self,
        proto: FrameDecoder | FrameProtocol,
        fin: bool,  # noqa: FBT001 - wsproto's signature
    ) -> bytes | CloseReason | None:
        if not (self._frame_is_data and fin):
            return None
        self._message_compressed = None
        if not self._frame_compressed:
            return None
        tail = self._inflate(_SYNC_TAIL)
        if isinstance(tail, CloseReason):
            return tail
        # The tail is not seen by MessageSizeLimit's payload hook: count it here.
        return tail if self._budget.take(len(tail)) else CloseReason.MESSAGE_TOO_BIG

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        # One byte past the budget is enough to know the message is too big, and all we ever allocate.
        try:
            out = self._decompressor.decompress(data, self._budget.remaining + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if self._decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    # ---- outbound ------------------------------------------------------------------------------------

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,  # noqa: FBT001
    ) -> tuple[RsvBits, bytes]:
        if opcode.iscontrol():
            return rsv, data
        if opcode is not Opcode.CONTINUATION:
            rsv = RsvBits(True, rsv.rsv2, rsv.rsv3)
        if self._compressor is None:
            self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self._window_bits)
        out = self._compressor.compress(data)
        if fin:
            out += self._compressor.flush(zlib.Z_SYNC_FLUSH)
            out = out.removesuffix(_SYNC_TAIL)
            if self._offer.server_no_context_takeover:
                self._compressor = None
        return rsv, out
