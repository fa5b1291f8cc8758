"""External programs some tests need (Chromium, Prometheus, promtool, kubectl).

A missing program skips its tests with the reason, unless ``OTAKU_REQUIRE_TOOLS=1`` (set by
``.ci/run``, after ``make test`` installed them): then it fails them.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def require_tool(name: str, hint: str) -> str:
    """The path of program ``name``; skips (or, when required, fails) when it is missing."""
    found = shutil.which(name)
    if found is not None:
        return found
    reason = f"{name} is not installed ({hint})"
    if os.environ.get("OTAKU_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def run_checker(program: str, *arguments: str, cwd: Path | None = None) -> None:
    """Run a checking program installed in this virtual environment by the dev extra
    (hadolint, check-jsonschema); fails the test with its output when it objects."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / program), *arguments],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stdout + done.stderr
