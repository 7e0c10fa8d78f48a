"""Makes the shared peer module (`ws_peer.py`, beside this file) importable from the tests in this directory,
which pytest imports by path (`--import-mode=importlib`) without putting the directory on `sys.path`."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
