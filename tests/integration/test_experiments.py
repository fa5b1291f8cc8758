"""Online experiments on a real database (SQLite and PostgreSQL): arms in answers, impressions
written once and dropped when the queue is full, feedback that removes an anime for good, the
report's figures on constructed data, and a short closed-loop run."""

import math
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from otaku.cli import app
from otaku.config import Settings, get_settings
from otaku.data.dataset import Dataset
from otaku.experiments.definition import Arm, ExperimentSpec, assign
from otaku.experiments.impressions import ImpressionLog, Shown, insert_impressions
from otaku.experiments.report import experiment_report
from otaku.experiments.store import start_experiment
from otaku.jobs.closed_loop import simulate_day
from otaku.jobs.load import load_dataset
from otaku.pipeline.engine import Engine
from otaku.service.app import create_app
from otaku.service.model import ServedModel
from otaku.service.online import OnlineExperiments
from otaku.service.users import UserDirectory
from otaku.storage.database import Database
from otaku.storage.models import Anime, Feedback, Impression, Rating, User, utc_now
from tests.integration.impression_pages import record_from_threads, shown_page

pytestmark = pytest.mark.integration
KEY = {"X-API-Key": "s3cret"}
AB = {
    "arms": [
        {"name": "control", "strategy": "default", "share": 0.5},
        {"name": "reference", "strategy": "seed", "share": 0.5},
    ]
}


def _settings(database: Database, tmp_path: Path) -> Settings:
    url = database.engine.url.render_as_string(hide_password=False)
    return Settings(
        home=tmp_path,
        database_url=url,
        api_key="s3cret",
        warm_users=0,
        experiment_poll_seconds=0,
    )


@pytest.fixture
def client(
    database: Database, small_dataset: Dataset, engine: Engine, tmp_path: Path
) -> Iterator[TestClient]:
    load_dataset(database, small_dataset, pool_share=0.0, seed=1)
    app = create_app(_settings(database, tmp_path), ServedModel(engine, "test", None, time.time()))
    with TestClient(app) as test_client:
        yield test_client


def _impressions(database: Database) -> list[Impression]:
    with database.reading() as session:
        return list(session.scalars(select(Impression)).all())


def test_a_running_experiment_picks_each_users_arm(
    client: TestClient, engine: Engine, database: Database
) -> None:
    assert client.put("/admin/experiments/ab1", json=AB).status_code == 401
    started = client.put("/admin/experiments/ab1", json=AB, headers=KEY)
    assert started.status_code == 201, started.text
    again = client.put("/admin/experiments/ab2", json=AB, headers=KEY)
    assert again.status_code == 409 and "ab1" in again.json()["detail"]
    bad = {"arms": [{**AB["arms"][0], "share": 0.7}, AB["arms"][1]]}
    refused = client.put("/admin/experiments/ab3", json=bad, headers=KEY)
    assert refused.status_code == 422 and "add up to 1" in refused.text
    listed = client.get("/v1/experiments").json()["experiments"]
    assert [(e["name"], e["running"]) for e in listed] == [("ab1", True)]

    spec = ExperimentSpec.model_validate({"name": "ab1", **AB})
    users = [int(u) for u in engine.known_user_ids[:30]]
    for user_id in users:
        page = client.get(f"/v1/users/{user_id}/recommendations").json()
        expected = assign(spec, user_id)
        assert (page["experiment"], page["arm"]) == ("ab1", expected.arm)
        assert page["strategy"] == expected.strategy
    chosen = client.get(f"/v1/users/{users[0]}/recommendations", params={"strategy": "seed"})
    assert chosen.json()["arm"] is None  # a caller who names a strategy is outside the test

    client.app.state.online.impressions.flush()  # type: ignore[attr-defined]
    shown = _impressions(database)
    assert len(shown) == len(users) + 1
    assert {i.arm for i in shown if i.experiment} == {"control", "reference"}
    assert all(len(i.anime_ids) == 10 and i.first_rank == 1 for i in shown)
    metrics = client.get("/metrics").text
    assert f'otaku_impressions_total{{outcome="written"}} {len(shown)}.0' in metrics
    assert 'otaku_impressions_total{outcome="dropped"} 0.0' in metrics

    assert client.post("/admin/experiments/ab1/stop", headers=KEY).json()["running"] is False
    after = client.get(f"/v1/users/{users[0]}/recommendations").json()
    assert (after["experiment"], after["arm"], after["strategy"]) == (None, None, "default")


def test_not_interested_anime_never_come_back(client: TestClient, engine: Engine) -> None:
    user_id = int(engine.known_user_ids[3])
    url = f"/v1/users/{user_id}/recommendations"
    first = [
        item["anime"]["anime_id"] for item in client.get(url, params={"k": 30}).json()["items"]
    ]
    dismissed = first[:3]
    for anime_id in dismissed:
        body = {"anime_id": anime_id, "kind": "not_interested"}
        stored = client.post(f"/v1/users/{user_id}/feedback", json=body, headers=KEY)
        assert stored.status_code == 200 and stored.json()["created"] is True, stored.text
    for strategy in ("default", "seed"):
        for offset in (0, 10, 20):
            params = {"k": 10, "offset": offset, "strategy": strategy}
            page = client.get(url, params=params).json()["items"]
            assert not {item["anime"]["anime_id"] for item in page} & set(dismissed)
    after = [
        item["anime"]["anime_id"] for item in client.get(url, params={"k": 27}).json()["items"]
    ]
    assert len(after) == 27 and not set(after) & set(dismissed)

    gone = client.delete(f"/v1/users/{user_id}/feedback/{dismissed[0]}", headers=KEY)
    assert gone.status_code == 204
    back = [item["anime"]["anime_id"] for item in client.get(url, params={"k": 30}).json()["items"]]
    assert dismissed[0] in back


def test_feedback_errors_name_the_problem(client: TestClient, engine: Engine) -> None:
    user_id = int(engine.known_user_ids[0])
    anime_id = int(engine.table.anime_ids[0])
    wrong_kind = client.post(
        f"/v1/users/{user_id}/feedback", json={"anime_id": anime_id, "kind": "meh"}, headers=KEY
    )
    assert wrong_kind.status_code == 422 and "kind" in wrong_kind.text
    unknown_user = client.post(
        "/v1/users/999999/feedback", json={"anime_id": anime_id, "kind": "clicked"}, headers=KEY
    )
    assert unknown_user.status_code == 404
    unknown_anime = client.post(
        f"/v1/users/{user_id}/feedback", json={"anime_id": 99999999, "kind": "clicked"}, headers=KEY
    )
    assert unknown_anime.status_code == 404
    assert (
        client.post(
            f"/v1/users/{user_id}/feedback", json={"anime_id": anime_id, "kind": "clicked"}
        ).status_code
        == 401
    )


_shown = shown_page


def test_impressions_are_written_exactly_once_under_concurrency(
    database: Database, small_dataset: Dataset
) -> None:
    log = ImpressionLog(database, capacity=10_000, batch_size=64)
    recorded = record_from_threads(log)
    assert log.flush(60)
    log.close()
    ids = [i.impression_id for i in _impressions(database)]
    assert len(ids) == 2000 and sorted(ids) == sorted(recorded)
    assert (log.counts.queued, log.counts.written, log.counts.dropped) == (2000, 2000, 0)
    # a batch written again (a retry after an uncertain commit) adds only what was missing
    again = [_shown(1, [1], impression_id=uuid.uuid4().hex).row() for _ in range(3)]
    with database.reading() as session:
        written = [dict(vars(i)) for i in session.scalars(select(Impression).limit(5))]
    rows = [{k: v for k, v in row.items() if not k.startswith("_")} for row in written]
    insert_impressions(database, rows + again)
    assert len(_impressions(database)) == 2003


def test_impressions_keep_any_text_exactly(database: Database) -> None:
    """Tabs, newlines, backslashes and nulls in the text columns survive the COPY format."""
    log = ImpressionLog(database, batch_size=10)
    awkward = "tab\there\nnew line \\N back\\slash\r é"
    log.record(_shown(7, [3, 2, 1], awkward, request_id=awkward))
    log.record(Shown(None, None, "b", "default", "v1", 1, [], 1.0))
    assert log.flush() and log.counts.written == 2
    log.close()
    stored = {i.request_id: i for i in _impressions(database)}
    first = stored[awkward]
    assert (first.arm, first.user_id, first.anime_ids) == (awkward, 7, [3, 2, 1])
    second = stored[None]
    assert (second.user_id, second.experiment, second.anime_ids) == (None, None, [])


def test_a_full_queue_drops_and_counts_without_blocking(database: Database) -> None:
    log = ImpressionLog(database, capacity=5, batch_size=1)
    with database.transaction() as session:  # hold a write lock: the writer waits on it
        if database.engine.dialect.name == "postgresql":
            session.execute(text("LOCK TABLE impressions IN EXCLUSIVE MODE"))
        else:
            session.execute(text("DELETE FROM impressions"))  # takes SQLite's write lock
        assert log.record(_shown(1, [1]))
        deadline = time.monotonic() + 10
        while log._queue.qsize() and time.monotonic() < deadline:  # the writer took it
            time.sleep(0.01)
        started = time.perf_counter()
        outcomes = [log.record(_shown(2, [i])) for i in range(20)]
        elapsed = time.perf_counter() - started
        assert outcomes == [True] * 5 + [False] * 15
        assert log.counts.dropped == 15 and elapsed < 1.0  # never waits for the database
    assert log.flush(60)
    log.close()
    assert len(_impressions(database)) == 6 == log.counts.written


def test_the_report_matches_hand_computed_figures(database: Database) -> None:
    now = utc_now()
    with database.transaction() as session:
        session.add_all(
            Anime(anime_id=a, name=f"a{a}", genres=[], numbers={}) for a in range(1, 21)
        )
        session.add_all(User(user_id=u, origin="api") for u in range(1, 7))
    spec = ExperimentSpec(
        name="exp",
        arms=(
            Arm(name="a", strategy="default", share=0.5),
            Arm(name="b", strategy="seed", share=0.5),
        ),
    )
    start_experiment(database, spec)
    log = ImpressionLog(database)
    shown_at = now - timedelta(days=3)
    # arm a: users 1-3 shown anime 1-10; arm b: users 4-6 shown anime 11-20 (ranks 11+ ignored)
    for user_id in (1, 2, 3):
        log.record(_shown(user_id, list(range(1, 11)), "a", shown_at=shown_at))
    for user_id in (4, 5, 6):
        log.record(_shown(user_id, [*range(11, 21), 1, 2], "b", shown_at=shown_at))
    assert log.flush()
    later, before, too_late = now - timedelta(days=2), now - timedelta(days=4), now
    ratings = [
        (1, 1, 9, later),
        (1, 2, 5, later),  # user 1: a hit (9) and a 5
        (2, 3, 8, before),  # rated before it was shown: not counted
        (3, 4, 7, too_late),  # after the 2-day window
        (4, 11, 7, later),
        (5, 12, 10, later),
        (6, 13, 4, later),
        (4, 1, 10, later),  # anime 1 was shown to user 4 beyond k: not counted
    ]
    with database.transaction() as session:
        session.add_all(
            Rating(user_id=u, anime_id=a, rating=r, updated_at=at) for u, a, r, at in ratings
        )
        session.add(Feedback(user_id=1, anime_id=3, kind="not_interested", created_at=later))
        session.add(Feedback(user_id=4, anime_id=14, kind="not_interested", created_at=later))
        session.add(Feedback(user_id=5, anime_id=15, kind="clicked", created_at=later))
    report = experiment_report(database, spec, k=10, window_days=2.5)
    a, b = report.arms
    assert (a.users, a.hit_users, a.rated, a.shown, a.dismissed) == (3, 1, 2, 30, 1)
    assert (b.users, b.hit_users, b.rated, b.shown, b.dismissed) == (3, 2, 3, 30, 1)
    assert a.hit_rate.value == pytest.approx(1 / 3) and b.hit_rate.value == pytest.approx(2 / 3)
    assert a.mean_rating.value == 7.0 and b.mean_rating.value == 7.0
    assert a.coverage == b.coverage == 0.5  # 10 of the 20 anime each
    assert a.dismiss_rate.value == pytest.approx(1 / 30)
    # by user (delta method): b's users gave 7, 10, 4 once each, var = 9 / 3;
    # a's dismissals per user 1, 0, 0 of 10 shown each, var = (1/3) / (3 * 10^2)
    z = 1.959964
    assert (b.mean_rating.low, b.mean_rating.high) == pytest.approx(
        (7 - z * math.sqrt(3), 7 + z * math.sqrt(3)), abs=1e-5
    )
    assert (a.dismiss_rate.low, a.dismiss_rate.high) == pytest.approx(
        (1 / 30 - z / 30, 1 / 30 + z / 30), abs=1e-6
    )
    assert report.sample_ratio.p_value == pytest.approx(1.0)  # 3 and 3 users for 50/50
    (comparison,) = report.comparisons
    assert comparison.arm == "b" and not comparison.enough_users
    # z for 2/3 vs 1/3 with n = 3 each: pooled .5, se = sqrt(.25 * 2/3) = 0.408248
    assert comparison.hit_rate_test.statistic == pytest.approx((1 / 3) / 0.4082483)


def test_a_short_closed_loop_produces_a_report(
    database: Database,
    small_dataset: Dataset,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_dataset(database, small_dataset, pool_share=0.3, seed=1)
    spec = ExperimentSpec.model_validate({"name": "loop", **AB})
    start_experiment(database, spec)
    users = UserDirectory(database)
    online = OnlineExperiments(database, _settings(database, tmp_path), None)
    served = ServedModel(engine, "test", None, time.time())
    days = [
        simulate_day(day, served, users, online, seed=3, arrivals=(5, 5), dismiss_share=0.5)
        for day in range(3)
    ]
    online.impressions.close()
    assert [d.arrived for d in days] == [5, 5, 5]
    assert [d.asked for d in days] == [5, 10, 15]
    assert sum(d.rated for d in days) > 0 and sum(d.dismissed for d in days) > 0
    report = experiment_report(database, spec)
    assert sum(arm.users for arm in report.arms) == 15
    assert sum(arm.impressions for arm in report.arms) == 30
    assert sum(arm.rated for arm in report.arms) == sum(d.rated for d in days)
    with database.reading() as session:
        dismissals = session.scalar(select(func.count()).select_from(Feedback))
    assert dismissals == sum(d.dismissed for d in days)

    monkeypatch.setenv("OTAKU_DATABASE_URL", database.engine.url.render_as_string(False))
    monkeypatch.setenv("OTAKU_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        printed = CliRunner().invoke(app, ["experiment", "report", "loop"], env={"COLUMNS": "250"})
        listed = CliRunner().invoke(app, ["experiment", "list"], env={"COLUMNS": "250"})
        missing = CliRunner().invoke(app, ["experiment", "report", "nope"])
    finally:
        get_settings.cache_clear()
    assert printed.exit_code == 0, printed.output
    for arm in report.arms:
        assert f"│ {arm.arm} " in printed.output and f"│ {arm.users} " in printed.output
    assert "reference vs control: hit rate p =" in printed.output
    assert "users per arm against the shares: chi-square p =" in printed.output
    assert "users per arm for 80% power at 5%" in printed.output
    assert listed.exit_code == 0 and "loop" in listed.output and "running" in listed.output
    assert missing.exit_code != 0 and "no experiment named 'nope'" in missing.output


def test_retention_prunes_old_impressions_and_clicks_but_keeps_dismissals(
    database: Database,
) -> None:
    from otaku.experiments.retention import prune_old

    now = utc_now()
    with database.transaction() as session:
        session.add_all(Anime(anime_id=a, name=f"a{a}", genres=[], numbers={}) for a in (1, 2, 3))
        session.add(User(user_id=1, origin="api"))
        session.flush()
        old = now - timedelta(days=400)
        session.add(Feedback(user_id=1, anime_id=1, kind="clicked", created_at=old))
        session.add(Feedback(user_id=1, anime_id=2, kind="not_interested", created_at=old))
        session.add(Feedback(user_id=1, anime_id=3, kind="clicked", created_at=now))
    log = ImpressionLog(database)
    log.record(_shown(1, [1], shown_at=now - timedelta(days=100)))
    log.record(_shown(1, [2], shown_at=now - timedelta(days=10)))
    assert log.flush()
    pruned = prune_old(database, impression_days=90, click_days=365)
    assert (pruned.impressions, pruned.clicks) == (1, 1)
    with database.reading() as session:
        kept = sorted(tuple(r) for r in session.execute(select(Feedback.anime_id, Feedback.kind)))
    assert kept == [(2, "not_interested"), (3, "clicked")]
    assert [i.anime_ids for i in _impressions(database)] == [[2]]
