"""The CLI as a user runs it: help everywhere, clear errors, train + evaluate on small data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otaku.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["data"],
        ["data", "fetch"],
        ["data", "validate"],
        ["train"],
        ["evaluate"],
        ["serve"],
        ["up"],
        ["init"],
        ["ui"],
        ["data", "load"],
        ["simulate-users"],
        ["retrain"],
        ["precompute"],
        ["promote"],
        ["scheduler"],
        ["strategies"],
        ["presets"],
        ["experiment"],
        ["experiment", "start"],
        ["experiment", "stop"],
        ["experiment", "list"],
        ["experiment", "report"],
        ["experiment", "prune"],
    ],
)
def test_help_on_every_command(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_strategies_lists_the_registry_and_the_configured_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otaku.config import get_settings

    sources = tmp_path / "sources.toml"
    sources.write_text(
        '[[source]]\nname = "text"\nquota = 0\n[[source]]\nname = "ials"\nquota = 70\n'
    )
    monkeypatch.setenv("OTAKU_SOURCES_FILE", str(sources))
    get_settings.cache_clear()
    result = runner.invoke(app, ["strategies"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "default" in result.output and "seed" in result.output
    assert "│ ials " in result.output and " 70 " in result.output
    assert "│ text " not in result.output
    sources.write_text('[[source]]\nname = "x"\nkind = "nope"\n')
    result = runner.invoke(app, ["strategies"], env={"COLUMNS": "200"})
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "source 'x': 'kind' must be one of" in result.output


def test_presets_are_listed_and_a_wrong_one_is_refused() -> None:
    listed = runner.invoke(app, ["presets"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    for name in ("fast (configured)", "reference", "quick"):
        assert name in listed.output
    wrong = runner.invoke(app, ["train", "--demo", "--preset", "turbo"])
    assert wrong.exit_code == 2
    assert "unknown preset 'turbo'; presets: fast, reference, quick" in wrong.output
    both = runner.invoke(app, ["train", "--demo", "--quick", "--preset", "reference"])
    assert both.exit_code == 2
    assert "--quick is --preset quick" in both.output


def test_validate_reports_bad_row(tmp_path: Path) -> None:
    (tmp_path / "anime.csv").write_text("MAL_ID,Name\n1,A\n2,B\n")
    (tmp_path / "rating_complete.csv").write_text("user_id,anime_id,rating\n1,1,5\n1,2,12\n")
    result = runner.invoke(app, ["data", "validate", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "rating_complete.csv" in result.output and "data row 2" in result.output
    assert "1..10" in result.output


def test_missing_files_explain_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "otaku data fetch" in result.output


def test_fetch_offline_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "KAGGLE_USERNAME": "nobody", "KAGGLE_KEY": "invalid"}
    completed = subprocess.run(
        [sys.executable, "-m", "otaku.cli", "data", "fetch", "--dest", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert completed.returncode == 2
    assert "could not download" in completed.stdout
    assert "anime.csv" in completed.stdout and str(tmp_path) in completed.stdout


@pytest.mark.integration
def test_evaluate_demo_writes_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTAKU_HOME", str(tmp_path / "home"))
    from otaku.config import get_settings

    get_settings.cache_clear()
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--demo",
            "--demo-users",
            "150",
            "--quick",
            "--seed-users",
            "10",
            "--no-lightfm-own",
            "--out",
            str(tmp_path / "reports"),
        ],
    )
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "reports" / "evaluation.json").read_text())
    models = {row["model"] for row in payload["ranking"]}
    assert {"popular", "itemknn", "ease", "ials", "lightfm", "seed", "default"} <= models
    for row in payload["ranking"]:
        assert 0.0 <= row["ndcg"] <= 1.0 and row["users"] > 0
    assert payload["info"]["simulated"] is True
    assert payload["rating"]["mae"] > 0
    markdown = (tmp_path / "reports" / "evaluation.md").read_text()
    assert "NDCG@10" in markdown and "not a held-out measure" in markdown
