"""External programs some tests need (Chromium, Prometheus, promtool, kubectl).

A missing program skips its tests with the reason, unless ``OTAKU_REQUIRE_TOOLS=1`` (set by
``.ci/run``, after ``make test`` installed them): then it fails them.
"""

import os
import shutil

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
