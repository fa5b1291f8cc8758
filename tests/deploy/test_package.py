"""The wheel the Docker image installs (not editable) carries the files that are not Python:
the UI's templates and stylesheet, and every database migration."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_templates_static_files_and_migrations(tmp_path: Path) -> None:
    project = tmp_path / "project"  # a copy: building writes build/ beside the sources
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(project),
        ],
        check=True,
        capture_output=True,
        cwd=project,
    )
    (wheel,) = tmp_path.glob("otaku-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    source = ROOT / "src"
    expected = {
        str(path.relative_to(source))
        for pattern in (
            "otaku/ui/templates/*.html",
            "otaku/ui/static/*",
            "otaku/storage/migrations/**/*.py",
            "otaku/storage/migrations/*.mako",
        )
        for path in source.glob(pattern)
    }
    assert len(expected) > 15
    assert expected <= names, expected - names
