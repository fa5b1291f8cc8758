"""Airflow DAGs running the same commands as `otaku scheduler`: daily arrivals of new users
at 21:50 UTC, their rankings precomputed at 22:10 UTC, and a weekly retrain (Sundays 22:30
UTC; it precomputes again after a promotion). With OTAKU_DASK_SCHEDULER set, retrain and
precompute run their heavy stages on that Dask cluster. The workers need the `otaku` package
installed (the project's Docker image) and the same OTAKU_* environment as the service."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

DEFAULTS = {"owner": "otaku", "retries": 1, "retry_delay": timedelta(minutes=10)}

with DAG(
    dag_id="otaku_simulate_users",
    description="New users arrive from the future-user pool",
    schedule="50 21 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULTS,
    tags=["otaku"],
) as simulate_users:
    BashOperator(task_id="simulate_users", bash_command="otaku simulate-users")

with DAG(
    dag_id="otaku_retrain",
    description="Train a challenger on the database; promote it by the champion/challenger rule",
    schedule="30 22 * * 0",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["otaku"],
) as retrain:
    BashOperator(
        task_id="retrain", bash_command="otaku retrain", execution_timeout=timedelta(hours=3)
    )

with DAG(
    dag_id="otaku_precompute",
    description="Store every known user's ranking by the champion (answers become reads)",
    schedule="10 22 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["otaku"],
) as precompute:
    BashOperator(
        task_id="precompute",
        bash_command="otaku precompute",
        execution_timeout=timedelta(hours=1),
    )
