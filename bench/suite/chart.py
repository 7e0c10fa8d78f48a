"""The SVG chart written next to each result's Markdown table (bench/suite/plot_chart.py draws it).

matplotlib lives in the bench's tools venv (bench/.venvs/tools, beside the limit server and the load clients),
installed there on first use; a Python that already has it is used as it is. Drawing is best effort: a run
whose chart cannot be drawn (no network to install matplotlib, say) still writes its tables, and says why.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .venvs import _create, _pip

PLOT = Path(__file__).resolve().parent / "plot_chart.py"
MATPLOTLIB = "matplotlib>=3.8"
DRAW_TIMEOUT = 120


def _has_matplotlib(python: str) -> bool:
    try:
        done = subprocess.run([python, "-c", "import matplotlib"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def matplotlib_python(preferred: str = sys.executable) -> str:
    """A Python that imports matplotlib: `preferred` if it does, else the tools venv's (installed if need be)."""
    if _has_matplotlib(preferred):
        return preferred
    bin_dir = _create("tools")
    python = str(bin_dir / "python")
    if not _has_matplotlib(python):
        print(f"[chart] pip install {MATPLOTLIB} into the tools venv", file=sys.stderr)
        done = _pip(bin_dir, MATPLOTLIB)
        if done.returncode != 0:
            raise RuntimeError(f"pip install {MATPLOTLIB} failed: {done.stderr.strip()[-500:]}")
    return python


def draw(json_path: Path, svg_path: Path, python: str | None = None) -> str | None:
    """Draw the result in `json_path` as `svg_path`: None when done, else why not."""
    try:
        interpreter = python or matplotlib_python()
        done = subprocess.run(
            [interpreter, str(PLOT), str(json_path), str(svg_path)],
            capture_output=True,
            text=True,
            timeout=DRAW_TIMEOUT,
            check=False,
        )
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if done.returncode != 0:
        return f"plot_chart.py exited {done.returncode}: {done.stderr.strip()[-500:]}"
    return None
