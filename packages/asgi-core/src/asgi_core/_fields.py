"""The grammar of HTTP fields (RFC 9110 section 5), for every protocol that reads or writes them.

A field name is a token; a field value is visible characters and obs-text, with spaces and tabs only between
them. Control characters other than HTAB (NUL, CR, LF, BEL, DEL, ...) are never part of a valid value, on any
protocol: HTTP/1.1 answers 400, HTTP/2 resets the stream, uWSGI refuses the request.
"""

from __future__ import annotations

import re
from typing import Final

#: RFC 9110 section 5.6.2: tchar, as a regular expression's character class (a token is one or more).
TCHAR: Final = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]"
TOKEN: Final = re.compile(TCHAR + rb"+")
#: RFC 9110 section 5.5: field-vchar (visible characters and obs-text), as a character class.
FIELD_VCHAR: Final = rb"[\x21-\x7e\x80-\xff]"
#: A field-value, with its leading and trailing whitespace already removed by the parser. (Visible characters
#: and whitespace are disjoint classes, so this cannot backtrack badly.)
FIELD_VALUE: Final = re.compile(rb"(?:" + FIELD_VCHAR + rb"+(?:[ \t]+" + FIELD_VCHAR + rb"+)*)?")
#: A Content-Length longer than this is refused: no body is a billion gigabytes, and the bound keeps `int` cheap.
_MAX_LENGTH_DIGITS: Final = 18
#: Any byte that may not appear anywhere in a field value, whitespace trimming or not.
_CONTROL: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def is_token(name: bytes) -> bool:
    """Whether `name` is a valid field name (or method): one or more tchar."""
    return TOKEN.fullmatch(name) is not None


def has_control_character(value: bytes) -> bool:
    """Whether `value` holds a control character other than HTAB, which makes any field value invalid."""
    return _CONTROL.search(value) is not None


def content_length(value: bytes) -> int:
    """The length a Content-Length field value declares (RFC 9110 section 8.6): ASCII digits, or a list of one
    value repeated ("42, 42", which a recipient may take as 42). `ValueError` for anything else: "+5", "-1",
    "5_0" and " 5 " are read by `int()` but are no Content-Length."""
    if value.find(b",") >= 0:  # not `in`: see docs/discussion/design.md, "Speed"
        lengths = {part.strip(b" \t") for part in value.split(b",")}
        if len(lengths) != 1:
            raise ValueError(f"conflicting content-length values in {value!r}")
        value = lengths.pop()
    if not value.isdigit() or len(value) > _MAX_LENGTH_DIGITS:  # bytes.isdigit is ASCII digits only
        raise ValueError(f"invalid content-length {value!r}")
    return int(value)


def is_field_value(value: bytes) -> bool:
    """Whether `value` is a valid, trimmed field value."""
    return FIELD_VALUE.fullmatch(value) is not None
