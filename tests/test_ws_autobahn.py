"""The Autobahn TestSuite, run by kosoku (its case files, a Rust runner), against the standalone echo server of
packages/asgi-ws/examples/echo_server.py (asyncio + asgi-http1 + asgi-wsproto) started as its own process.

By default a fast subset runs (framing, pings, reserved bits, opcodes, fragmentation, UTF-8, close handling,
auto-fragmentation, and a sample of the permessage-deflate cases); `ASGI_WS_AUTOBAHN=all` runs every case,
which takes many minutes (the 9.x, 12.x and 13.x cases send hundreds of megabytes). No case may end FAILED,
and no closing handshake may end wrong; NON-STRICT, INFORMATIONAL and UNIMPLEMENTED are Autobahn's own
passing verdicts.

The same run from a shell, against any server (counts are in packages/asgi-ws/README.md):

    python packages/asgi-ws/examples/echo_server.py --port 9001 &
    kosoku -m fuzzingclient 127.0.0.1:9001 -o reports/autobahn
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ECHO_SERVER = Path(__file__).resolve().parents[1] / "packages" / "asgi-ws" / "examples" / "echo_server.py"
FAST_CASES = [
    "1.*",
    "2.*",
    "3.*",
    "4.*",
    "5.*",
    "6.*",
    "7.*",
    "10.*",
    "9.1.1",
    "9.2.1",
    "12.1.1",
    "12.1.2",
    "12.2.1",
    "12.3.1",
    "13.1.1",
    "13.2.1",
    "13.3.1",
    "13.5.1",
    "13.6.1",
    "13.7.1",
]
BAD_CLOSE = frozenset({"FAILED", "WRONG CODE", "UNCLEAN", "FAILED BY CLIENT"})


def _start_echo_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(ECHO_SERVER), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # "listening on ws://127.0.0.1:PORT", or "" if it died
    if not line.startswith("listening on "):
        process.kill()
        process.wait(5)
        pytest.fail(f"the echo server did not start: {line!r}")
    return process, line.split()[-1]


def test_autobahn_fuzzingclient_against_the_echo_server() -> None:
    kosoku: Any = pytest.importorskip("kosoku", reason="kosoku (the Autobahn runner) is a test dependency")
    cases = None if os.environ.get("ASGI_WS_AUTOBAHN") == "all" else FAST_CASES
    timeout = 3600 if cases is None else 90
    process, url = _start_echo_server()
    try:

        async def fuzz() -> list[Any]:
            try:
                return list(await asyncio.wait_for(kosoku.run_fuzzingclient(url, cases, concurrency=2), timeout))
            except kosoku.FailureError as failure:
                return list(failure.results)

        results = asyncio.run(fuzz())
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    assert results, "no case ran"
    failed = [
        f"{r.case_id}: {r.behavior.value} / close {r.behavior_close.value}: {r.result} {r.result_close}"
        for r in results
        if r.behavior.value == "FAILED" or r.behavior_close.value in BAD_CLOSE
    ]
    assert failed == []
    verdicts = Counter(r.behavior.value for r in results)
    assert set(verdicts) <= {"OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"}, verdicts
    if cases is not None:
        assert len(results) >= 250  # noqa: PLR2004 - the subset above is 259 cases
