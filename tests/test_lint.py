"""ruff (configured in ruff.toml) runs with the test suite, so the README's test command lints too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    try:
        import ruff  # noqa: F401 - only to say which install is missing
    except ImportError:
        raise AssertionError('ruff is not installed: pip install -e ".[test]" (the README\'s test command)') from None
    binary = shutil.which("ruff") or sys.executable
    command = [binary, "check", "--no-cache", str(ROOT)] if binary != sys.executable else [
        sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
