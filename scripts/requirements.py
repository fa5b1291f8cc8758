"""Print the project's requirements from pyproject.toml, one per line: the dependencies, plus
those of the extras named as arguments (``python3 scripts/requirements.py train fetch``).

The image build installs them in a layer of its own, before the source is copied, so that a
change to the code does not reinstall every dependency."""

import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements(extras: list[str]) -> list[str]:
    """The project's dependencies and those of ``extras`` (an unknown extra is an error)."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; pyproject.toml has {sorted(optional)}")
    return [*project["dependencies"], *(r for extra in extras for r in optional[extra])]


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1:])))
