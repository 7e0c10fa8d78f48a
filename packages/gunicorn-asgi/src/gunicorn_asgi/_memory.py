"""A worker's own resident memory, read cheaply enough for its heartbeat.

On Linux, `/proc/self/statm` holds the resident page count as its second field: one small read, no parsing
of `/proc/self/status`. Elsewhere the peak RSS from `getrusage` stands in (kibibytes on Linux and BSDs, bytes
on macOS): a peak can only overstate the current RSS, so a limit is never missed, only reached early.
"""

from __future__ import annotations

import os
import sys

MIB = 1024 * 1024
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = "/proc/self/statm"


def read_rss() -> int:
    """This process's resident set size in bytes."""
    try:
        with open(_STATM, "rb") as statm:
            fields = statm.read().split()
        return int(fields[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return _peak_rss()


def _peak_rss() -> int:
    import resource  # noqa: PLC0415 - POSIX only, and only where /proc is missing

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class MemoryWatch:
    """Reads the RSS at most once per `period` seconds of the caller's clock; says when it passes `limit`."""

    __slots__ = ("_next", "limit", "period", "rss")

    def __init__(self, limit: int, period: float = 2.0) -> None:
        self.limit = limit  # bytes; 0: no limit, only reading (for the metrics)
        self.period = period
        self.rss = 0
        self._next = 0.0

    def due(self, now: float) -> bool:
        if now < self._next:
            return False
        self._next = now + self.period
        return True

    def over_limit(self) -> bool:
        """Read the RSS now; whether it is past the limit."""
        self.rss = read_rss()
        return 0 < self.limit < self.rss
