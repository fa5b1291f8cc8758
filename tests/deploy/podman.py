"""Running the project's images with podman for the container tests (``make image`` builds
them; without podman the tests skip, or fail when ``OTAKU_REQUIRE_TOOLS=1``)."""

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"
SERVE_IMAGE = "localhost/otaku:dev"
JOBS_IMAGE = "localhost/otaku-jobs:dev"


def podman_environment() -> dict[str, str]:
    """The environment podman runs with here (runc, no default ulimits)."""
    return {"CONTAINERS_CONF": str(CONTAINERS_CONF), **os.environ}


def _run(arguments: tuple[str, ...], timeout: float) -> subprocess.CompletedProcess[str]:
    program = require_tool("podman", "Debian packages podman runc; make test installs them")
    return subprocess.run(
        [program, "--runtime", "runc", *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=podman_environment(),
    )


def podman(*arguments: str, check: bool = True, timeout: float = 600) -> str:
    """Run ``podman --runtime runc ARGUMENTS``; its standard output (fails the test with both
    outputs when it exits non-zero and ``check``)."""
    done = _run(arguments, timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(arguments)}: {done.stdout}{done.stderr}")
    return done.stdout


def build_images(*names: str) -> None:
    """Build (or find in podman's layer cache) the named images with ``scripts/images.sh``."""
    require_tool("podman", "Debian packages podman runc; make test installs them")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "images.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={**podman_environment(), "IMAGES": " ".join(names)},
        timeout=3600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]


def inspect(kind: str, name: str) -> Any:
    """``podman KIND inspect NAME``, parsed (KIND: image, container, volume)."""
    return json.loads(podman(kind, "inspect", name))[0]


def free_port() -> int:
    """A TCP port nothing listens on now (containers share the host's network here)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], seconds: float, what: str, logs: str = "") -> None:
    """Poll ``condition`` every half second for up to ``seconds`` (fails naming ``what``; with
    ``logs``, a container whose log is shown)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    shown = container_logs(logs) if logs else ""
    raise AssertionError(f"{what} within {seconds:.0f} s\n{shown}")


def container_logs(name: str, lines: int = 60) -> str:
    """The last ``lines`` a container wrote (both streams)."""
    done = _run(("logs", "--tail", str(lines), name), timeout=60)
    return done.stdout + done.stderr
