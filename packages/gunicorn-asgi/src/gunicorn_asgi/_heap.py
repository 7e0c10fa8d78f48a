"""glibc's heap in a worker: free memory kept at the top of the heap rather than handed back on every swing.

By default glibc gives the top of its heap back to the kernel (`brk`) as soon as 128 KiB lie free there, and
takes it back with the next allocations, every page faulted in anew. A worker's heap swings by more than that
with each batch of requests carrying bodies of some kilobytes: with 32 clients POSTing 16 KiB, a `brk` every
ten requests and 1.4 to 1.8 minor page faults a request, and a worker that fell into that rhythm served a third
fewer requests per CPU-second than one that did not (which it does depends on where its heap happened to end,
so the `post` benchmark swung by 2x from one run of the same build to the next).

So the worker keeps up to `TRIM_THRESHOLD` free at the top of its heap (more than that is still given back),
and, since setting it stops glibc from adapting its mmap threshold, sets that threshold where glibc's
adaptation ends anyway (32 MiB on 64-bit): allocations below it come from the heap, as they would once glibc
had seen one that large. An operator's own `MALLOC_*_` environment variables or glibc malloc tunables win:
then nothing is changed here. Other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping

from ._memory import MIB

#: Free bytes glibc may keep at the top of the heap before it gives memory back.
TRIM_THRESHOLD = 8 * MIB
#: Allocations from this size on get their own mapping (glibc's adaptive threshold stops here on 64-bit).
MMAP_THRESHOLD = 32 * MIB
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_OPERATOR_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def keep_heap(environ: Mapping[str, str] = os.environ) -> str:
    """Tune glibc's heap as the module says; what was done, in words for the log."""
    if platform.libc_ver()[0] != "glibc":
        return "heap left as it is (not glibc)"
    if any(name in environ for name in _OPERATOR_SETTINGS) or "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return "heap left as the environment sets it"
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return "heap left as it is (glibc refused the thresholds)"
    return f"heap keeps up to {TRIM_THRESHOLD // MIB} MiB free, maps allocations from {MMAP_THRESHOLD // MIB} MiB"
