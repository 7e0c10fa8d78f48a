"""The worker's glibc heap keeps the memory a swing of load freed at its top, instead of handing it back to the
kernel and faulting it in again with the next requests; an operator's own malloc settings win."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
from gunicorn_asgi._heap import keep_heap

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="glibc's heap: other C libraries are left alone"
)

# In a fresh interpreter: 4 MiB taken from the heap 16 KiB at a time (what request bodies do), then freed. How
# much of it the process still holds, in KiB, after `keep_heap` or without it.
SWING = """
import sys
from gunicorn_asgi._heap import keep_heap
from gunicorn_asgi._memory import read_rss
if sys.argv[1] == "keep":
    keep_heap({})
blocks = [bytes(16 * 1024) for _ in range(256)]
grown = read_rss()
del blocks
print((grown - read_rss()) >> 10)
"""


def given_back_kib(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SWING, mode], capture_output=True, text=True, check=True, timeout=60
    )
    return int(done.stdout)


def test_freed_memory_stays_at_the_top_of_the_heap() -> None:
    assert given_back_kib("default") > 2048  # glibc's default: the freed 4 MiB go back to the kernel at once
    assert given_back_kib("keep") < 512  # kept for the next requests, no page faults to take it again


def test_the_operators_malloc_settings_win() -> None:
    assert keep_heap({"MALLOC_TRIM_THRESHOLD_": "131072"}) == "heap left as the environment sets it"
    assert (
        keep_heap({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"})
        == "heap left as the environment sets it"
    )
