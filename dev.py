#!/usr/bin/env python3
"""Bootstrap for a fresh machine: `python3 dev.py demo`, `python3 dev.py test`, `python3 dev.py check`.

Only the standard library is used here: it makes a private venv in `.tools/` holding a pinned hatch (system pip
is externally managed on Debian), then hands everything to hatch. Any other arguments go to hatch as they are.
"""

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
BIN = TOOLS / ("Scripts" if os.name == "nt" else "bin")
HATCH = BIN / ("hatch.exe" if os.name == "nt" else "hatch")
HATCH_VERSION = "1.18.2"

SHORTCUTS = {
    "demo": ["run", "demo"],
    "docs": ["run", "docs:build"],
}


def ensure_hatch() -> None:
    if HATCH.exists():
        return
    venv.create(TOOLS, with_pip=True)
    subprocess.check_call([str(BIN / "python"), "-m", "pip", "install", "-q", f"hatch=={HATCH_VERSION}"])


def main() -> int:
    args = sys.argv[1:] or ["test"]
    if args[0] == "bench":  # the benchmark makes its own venvs per server; it needs no hatch
        return subprocess.call([sys.executable, str(ROOT / "bench" / "run.py"), *args[1:]], cwd=ROOT)
    ensure_hatch()
    if args[0] in SHORTCUTS:
        args = [*SHORTCUTS[args[0]], *args[1:]]
    return subprocess.call([str(HATCH), *args], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
