"""The timetable: daily arrivals at 21:50 UTC, weekly retrain on Sundays at 22:30 UTC; the
Airflow DAGs run the same commands on the same schedule."""

import ast
from datetime import UTC, datetime
from pathlib import Path

from otaku.jobs.scheduler import JOBS, Job, run_job

DAGS = Path(__file__).resolve().parents[3] / "deploy" / "airflow" / "dags" / "otaku.py"


def test_next_runs_follow_the_reference_timetable() -> None:
    simulate, retrain, precompute = JOBS
    tuesday_noon = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert simulate.next_run(tuesday_noon) == datetime(2026, 12, 1, 21, 50, tzinfo=UTC)
    assert simulate.next_run(datetime(2026, 12, 1, 21, 50, tzinfo=UTC)) == datetime(
        2026, 12, 2, 21, 50, tzinfo=UTC
    )
    assert retrain.next_run(tuesday_noon) == datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    assert retrain.next_run(datetime(2026, 12, 6, 22, 31, tzinfo=UTC)) == datetime(
        2026, 12, 13, 22, 30, tzinfo=UTC
    )
    assert precompute.next_run(tuesday_noon) == datetime(2026, 12, 1, 22, 10, tzinfo=UTC)
    assert (simulate.cron, retrain.cron, precompute.cron) == (
        "50 21 * * *",
        "30 22 * * 0",
        "10 22 * * *",
    )


def test_a_job_runs_its_command_and_reports_the_exit_code() -> None:
    assert run_job(Job("help", ("otaku", "--help"), 0, 0)) == 0
    assert run_job(Job("bad", ("otaku", "no-such-command"), 0, 0)) != 0


def _dag_calls(tree: ast.AST) -> dict[str, dict[str, object]]:
    """dag_id → schedule and the bash commands of its tasks, read from the source."""
    dags: dict[str, dict[str, object]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            call = node.items[0].context_expr
            assert isinstance(call, ast.Call)
            keywords = {k.arg: k.value for k in call.keywords}
            dag_id = ast.literal_eval(keywords["dag_id"])
            commands = [
                ast.literal_eval(k.value)
                for inner in ast.walk(node)
                if isinstance(inner, ast.Call)
                for k in inner.keywords
                if k.arg == "bash_command"
            ]
            dags[dag_id] = {
                "schedule": ast.literal_eval(keywords["schedule"]),
                "commands": commands,
            }
    return dags


def test_airflow_dags_parse_and_run_the_same_commands() -> None:
    source = DAGS.read_text()
    compile(source, str(DAGS), "exec")  # valid Python (Airflow itself is not installed here)
    dags = _dag_calls(ast.parse(source))
    assert dags["otaku_simulate_users"] == {
        "schedule": "50 21 * * *",
        "commands": ["otaku simulate-users"],
    }
    assert dags["otaku_retrain"] == {"schedule": "30 22 * * 0", "commands": ["otaku retrain"]}
    assert dags["otaku_precompute"] == {
        "schedule": "10 22 * * *",
        "commands": ["otaku precompute"],
    }
    scheduler_commands = {" ".join(job.command) for job in JOBS}
    assert scheduler_commands == {"otaku simulate-users", "otaku retrain", "otaku precompute"}
    assert {job.cron for job in JOBS} == {dag["schedule"] for dag in dags.values()}
