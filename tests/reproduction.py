"""Running a reproduction script as the `slow` tests do: its own process, its JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_reproduction(script: str, run_root: Path, *args: str) -> dict:
    """``python SCRIPT --run-root RUN_ROOT ARGS`` from the project root; the figures of its last
    line (``{"benchmark": ..., "figures": {...}}``). Fails the test with the output's tail."""
    done = subprocess.run([sys.executable, script, "--run-root", str(run_root), *args],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["figures"]
