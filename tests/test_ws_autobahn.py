"""The Autobahn TestSuite, run by kosoku (its case files, a Rust runner), against the echo app of
packages/asgi-ws/examples/echo_server.py served by a real `gunicorn-asgi` master with one worker.

By default a fast subset runs (framing, pings, reserved bits, opcodes, fragmentation, UTF-8, close handling,
auto-fragmentation, and a sample of the permessage-deflate cases); `ASGI_WS_AUTOBAHN=all` runs every case,
which takes many minutes (the 9.x, 12.x and 13.x cases send hundreds of megabytes). No case may end FAILED
or UNIMPLEMENTED, no closing handshake may end wrong, and at most 2 cases may be NON-STRICT (Autobahn's
passing verdict for a server that does not fail fast); INFORMATIONAL is Autobahn's own passing verdict.

The same run from a shell, against any server (counts are in packages/asgi-ws/README.md):

    gunicorn-asgi --no-control-socket --bind 127.0.0.1:9001 --chdir packages/asgi-ws/examples echo_server:app &
    kosoku -m fuzzingclient 127.0.0.1:9001 -o reports/autobahn
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

import kosoku
import pytest

from tests.worker_fixture import ROOT, ServerFactory, serve_fixture  # noqa: F401

ECHO_DIR = ROOT / "packages" / "asgi-ws" / "examples"
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


@pytest.mark.timeout(3700)  # the full run (ASGI_WS_AUTOBAHN=all) is bounded by its own hour, below
def test_autobahn_fuzzingclient_against_gunicorn_asgi(serve: ServerFactory) -> None:
    cases = None if os.environ.get("ASGI_WS_AUTOBAHN") == "all" else FAST_CASES
    timeout = 3600 if cases is None else 120
    server = serve(app="echo_server:app", chdir=ECHO_DIR)
    url = f"ws://127.0.0.1:{server.port}"
    try:

        async def fuzz() -> list[Any]:
            try:
                return list(await asyncio.wait_for(kosoku.run_fuzzingclient(url, cases, concurrency=2), timeout))
            except kosoku.FailureError as failure:
                return list(failure.results)

        results: list[Any] = asyncio.run(fuzz())
    finally:
        server.stop()
    assert results, "no case ran"
    failed = [
        f"{r.case_id}: {r.behavior.value} / close {r.behavior_close.value}: {r.result} {r.result_close}"
        for r in results
        if r.behavior.value == "FAILED" or r.behavior_close.value in BAD_CLOSE
    ]
    assert failed == []
    verdicts = Counter(r.behavior.value for r in results)
    print(f"\nautobahn: {len(results)} cases, verdicts {dict(verdicts)}")  # noqa: T201 - the README quotes it
    assert set(verdicts) <= {"OK", "NON-STRICT", "INFORMATIONAL"}, verdicts
    # Fail fast: after a protocol violation nothing later is answered, and what came before is (3.2, 4.1.3,
    # 5.15...); invalid UTF-8 fails inside the frame that carries it (6.4.3, 6.4.4). Every run so far: 0.
    non_strict = [r.case_id for r in results if r.behavior.value == "NON-STRICT"]
    assert len(non_strict) <= 2, non_strict
    if cases is not None:
        assert len(results) == 259  # the subset above: 247 cases in 1-7 and 10, and 12 picked ones
