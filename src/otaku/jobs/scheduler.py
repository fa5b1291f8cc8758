"""`otaku scheduler`: the reference's timetable in one process — new users arrive daily at
21:50 UTC (`otaku simulate-users`), the model is retrained weekly (`otaku retrain`, Sundays at
22:30 UTC, after that day's arrivals). Each job runs as the same CLI command the Airflow DAGs
in ``deploy/airflow/`` run, in a child process, so a failing job never takes the scheduler down.
"""

import logging
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A command and when it runs (``weekday`` None = every day; Monday = 0)."""

    name: str
    command: tuple[str, ...]
    hour: int
    minute: int
    weekday: int | None = None

    @property
    def cron(self) -> str:
        """The same timetable as a cron expression (UTC; cron counts Sunday as 0)."""
        weekday = "*" if self.weekday is None else str((self.weekday + 1) % 7)
        return f"{self.minute} {self.hour} * * {weekday}"

    def next_run(self, now: datetime) -> datetime:
        """The first run time strictly after ``now`` (UTC)."""
        candidate = now.astimezone(UTC).replace(
            hour=self.hour, minute=self.minute, second=0, microsecond=0
        )
        while candidate <= now or (
            self.weekday is not None and candidate.weekday() != self.weekday
        ):
            candidate += timedelta(days=1)
        return candidate


JOBS = (
    Job("simulate-users", ("otaku", "simulate-users"), hour=21, minute=50),
    Job("retrain", ("otaku", "retrain"), hour=22, minute=30, weekday=6),
    # the day's new users (and changed profiles) get stored rankings; retrain precomputes
    # again after a promotion
    Job("precompute", ("otaku", "precompute"), hour=22, minute=10),
)


def run_job(job: Job) -> int:
    """Run a job's command (``otaku ...`` through this interpreter); returns its exit code."""
    command = [sys.executable, "-m", "otaku.cli", *job.command[1:]]
    log.info("running %s: %s", job.name, " ".join(job.command))
    code = subprocess.call(command)
    log.log(logging.INFO if code == 0 else logging.ERROR, "%s exited with %d", job.name, code)
    return code


def run_forever(jobs: tuple[Job, ...] = JOBS, stop: threading.Event | None = None) -> None:
    """Sleep until the next job is due, run it, repeat (until ``stop`` is set)."""
    stop = stop or threading.Event()
    while not stop.is_set():
        now = datetime.now(UTC)
        due = min(jobs, key=lambda job: job.next_run(now))
        when = due.next_run(now)
        log.info("next: %s at %s", due.name, when.isoformat())
        if stop.wait((when - now).total_seconds()):
            return
        run_job(due)
