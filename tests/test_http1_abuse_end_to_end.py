"""HTTP/1.1 against slow readers, end to end: `bench/slow_readers.py` run briefly against our server process.

Ten clients ask for 288 MiB between them and read 1 KiB a second. The server may hold about a write buffer and
an app message per connection (some 10 MiB here); before pipelined requests waited for the write buffer, it
queued everything asked for (232 MiB within seconds). The limit is generous: it tells the two apart, not speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "slow_readers.py"
GROWTH_LIMIT_MIB = 64


def test_slow_readers_cost_a_bounded_amount_of_memory() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--ours", "--seconds", "4"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not result["client_errors"], result
    assert result["growth_mib"] < GROWTH_LIMIT_MIB, result
