"""RFC 9113 section 6: the frame types and flags that our own frame code reads (`_inbound`) and writes
(`_frames`); h2 knows them all, these are the few we handle without it."""

from __future__ import annotations

from typing import Final

#: Section 4.1: a frame header's size.
FRAME_HEADER_SIZE: Final = 9
DATA: Final = 0x0
HEADERS: Final = 0x1
PUSH_PROMISE: Final = 0x5
CONTINUATION: Final = 0x9
#: Flags (of DATA and HEADERS).
END_STREAM: Final = 0x1
END_HEADERS: Final = 0x4
