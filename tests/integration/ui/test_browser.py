"""The web UI in a real headless Chromium (Debian's, driven by Playwright), against a real API
on a real SQLite database: every page loads, searches and recommendations show results, a
rating written from the UI reaches the database, and a down API is a clear message.

Screenshots of every page are kept in ``test-artifacts/screenshots`` (``OTAKU_SCREENSHOT_DIR``).
"""

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from otaku.config import Settings
from otaku.data.dataset import Dataset
from otaku.jobs.load import load_dataset
from otaku.pipeline.engine import Engine
from otaku.service.app import create_app
from otaku.service.model import ServedModel
from otaku.storage.database import Database, create_db_engine, migrate
from otaku.storage.models import Feedback
from otaku.storage.repository import Repository
from otaku.ui.app import create_ui
from tests.integration.conftest import BackgroundServer, free_port
from tests.storage_backends import sqlite_url
from tests.tools import require_tool

pytestmark = pytest.mark.integration
KEY = "ui-test-key"
SCREENSHOTS = Path(
    os.environ.get(
        "OTAKU_SCREENSHOT_DIR", Path(__file__).resolve().parents[3] / "test-artifacts/screenshots"
    )
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Site:
    ui: str
    api: str
    database: Database


@pytest.fixture(scope="module")
def site(
    small_dataset: Dataset, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("ui")
    database = Database(create_db_engine(sqlite_url(folder)))
    migrate(database.engine)
    load_dataset(database, small_dataset, pool_share=0.0, seed=1)
    api_settings = Settings(home=folder, database_url=sqlite_url(folder), api_key=KEY, warm_users=0)
    api_app = create_app(api_settings, ServedModel(engine, "test", None, time.time()))
    with BackgroundServer(api_app) as api:
        ui_app = create_ui(Settings(home=folder, ui_api_url=api.url, api_key=KEY))
        with BackgroundServer(ui_app) as ui:
            yield Site(ui.url, api.url, database)
    database.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # OTAKU_CHROMIUM: another Chromium-based browser (GitHub's runners have google-chrome)
    chromium = require_tool(
        os.environ.get("OTAKU_CHROMIUM", "chromium"),
        "Debian package chromium; make test installs it",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _result_names(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("table.results a.name").all_inner_texts()]


def test_home_page_shows_the_model_and_the_three_ways_in(site: Site, page: Any) -> None:
    response = page.goto(site.ui)
    assert response.status == 200
    assert "Model test-quick" in page.get_by_test_id("model").inner_text()
    for heading in ("I have a user id", "New here?", "Like one anime?"):
        assert page.get_by_role("heading", name=heading).is_visible()
    _shot(page, "home")


def test_known_user_sees_ratings_chart_and_explained_recommendations(
    site: Site, page: Any, engine: Engine
) -> None:
    user_id = int(engine.known_user_ids[0])
    page.goto(site.ui)
    page.get_by_label("User id").fill(str(user_id))
    page.get_by_role("button", name="Show my recommendations").click()
    page.wait_for_url(f"**/users/{user_id}")
    assert page.get_by_role("heading", name=f"User {user_id}").is_visible()
    assert page.locator("[data-testid=rated] tbody tr").count() == len(engine.history(user_id))
    assert page.locator("[data-testid=genre-chart] rect").count() > 0
    rows = page.locator("table.results tbody tr")
    assert rows.count() == 10
    first = rows.first.inner_text()
    assert any(word in first for word in ("like ", "matches your genres", "popular"))
    assert page.locator("table.results td.predicted").first.inner_text().strip() != "–"
    _shot(page, "known-user")


def test_rating_from_the_ui_is_stored_and_changes_the_page(
    site: Site, page: Any, engine: Engine
) -> None:
    user_id = int(engine.known_user_ids[1])
    page.goto(f"{site.ui}/users/{user_id}")
    first = page.locator("table.results tbody tr").first
    name = first.locator("a.name").inner_text().strip()
    anime_id = int(first.locator("form.rate input[name=anime_id]").get_attribute("value"))
    first.locator("select[name=rating]").select_option("10")
    first.get_by_role("button", name="Rate").click()
    page.wait_for_url(f"**/users/{user_id}?saved={anime_id}")
    assert f"Saved your rating of {name}" in page.get_by_role("status").inner_text()
    assert name in page.locator("[data-testid=rated]").inner_text()
    assert name not in _result_names(page)
    with site.database.transaction() as session:
        ratings = dict(Repository(session).user_ratings(user_id))
    assert ratings.get(anime_id) == 10
    _shot(page, "rated")


def test_not_interested_from_the_ui_removes_the_anime_for_good(
    site: Site, page: Any, engine: Engine
) -> None:
    user_id = int(engine.known_user_ids[2])
    page.goto(f"{site.ui}/users/{user_id}")
    first = page.locator("table.results tbody tr").first
    name = first.locator("a.name").inner_text().strip()
    anime_id = int(first.locator("form.dismiss input[name=anime_id]").get_attribute("value"))
    first.get_by_role("button", name="Not interested").click()
    page.wait_for_url(f"**/users/{user_id}?dismissed={anime_id}")
    assert "will not be recommended to you again" in page.get_by_role("status").inner_text()
    assert name not in _result_names(page)
    page.goto(f"{site.ui}/users/{user_id}?strategy=seed&k=50")
    assert name not in _result_names(page)
    with site.database.reading() as session:
        kinds = (
            session.execute(
                select(Feedback.kind).where(
                    Feedback.user_id == user_id, Feedback.anime_id == anime_id
                )
            )
            .scalars()
            .all()
        )
    assert kinds == ["not_interested"]
    _shot(page, "not-interested")


def test_new_user_with_genres_and_a_misspelt_title_gets_recommendations(
    site: Site, page: Any, engine: Engine
) -> None:
    title = engine.table.names[0]
    page.goto(f"{site.ui}/new")
    page.get_by_label("weight of Action").fill("1")
    page.get_by_label("weight of Comedy").fill("0.5")
    page.get_by_label("title 1").fill(title[:-1])  # a typo: last letter missing
    page.get_by_label("rating 1").select_option("9")
    page.get_by_role("button", name="Recommend").click()
    page.wait_for_selector("table.results")
    assert f"{title} (9)" in page.locator("p.notice").inner_text()
    names = _result_names(page)
    assert len(names) == 10 and title not in names
    _shot(page, "new-user")


def test_saving_a_new_profile_creates_a_user_with_those_ratings(
    site: Site, page: Any, engine: Engine
) -> None:
    title = engine.table.names[3]
    page.goto(f"{site.ui}/new")
    page.get_by_label("title 1").fill(title)
    page.get_by_label("rating 1").select_option("8")
    page.get_by_role("button", name="Save as my profile").click()
    page.wait_for_url("**/users/*")
    user_id = int(page.url.rsplit("/", 1)[1])
    assert user_id > int(engine.known_user_ids.max())
    assert title in page.locator("[data-testid=rated]").inner_text()
    assert page.locator("table.results tbody tr").count() == 10


def test_similar_search_forgives_typos_and_suggests_when_lost(
    site: Site, page: Any, engine: Engine
) -> None:
    title = engine.table.names[0]
    page.goto(f"{site.ui}/similar")
    page.get_by_label("Title").fill(title.lower()[:-1])
    page.get_by_role("button", name="Find similar").click()
    page.wait_for_selector("table.results")
    assert title in page.get_by_test_id("matched").inner_text()
    assert len(_result_names(page)) == 10
    _shot(page, "similar")
    page.goto(f"{site.ui}/similar?title=zzqx%20not%20an%20anime")
    assert page.get_by_role("alert").is_visible()
    suggestions = page.get_by_test_id("suggestions").locator("a")
    assert suggestions.count() > 0
    suggestions.first.click()
    page.wait_for_selector("table.results")
    _shot(page, "similar-suggestions")


def test_anime_page_shows_details_and_similar_anime(site: Site, page: Any, engine: Engine) -> None:
    anime_id = int(engine.table.anime_ids[0])
    response = page.goto(f"{site.ui}/anime/{anime_id}")
    assert response.status == 200
    assert page.get_by_role("heading", level=1).inner_text() == engine.table.names[0]
    assert len(_result_names(page)) == 10
    _shot(page, "anime")


def test_unknown_user_is_told_where_to_go(site: Site, page: Any) -> None:
    response = page.goto(f"{site.ui}/users/987654321")
    assert response.status == 404
    assert "987654321" in page.get_by_role("alert").inner_text()
    assert page.get_by_role("link", name="Get recommendations from your tastes").is_visible()


def test_a_down_api_is_a_clear_message(page: Any, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with BackgroundServer(create_ui(Settings(home=tmp_path, ui_api_url=closed))) as ui:
        for path in ("/", "/new", "/similar?title=Naruto", "/users/1"):
            response = page.goto(ui.url + path)
            assert response.status == 503, path
            assert closed in page.get_by_test_id("api-down").inner_text()
        _shot(page, "api-down")


def test_a_write_the_api_refuses_is_explained(site: Site, page: Any, engine: Engine) -> None:
    keyless = create_ui(Settings(ui_api_url=site.api))  # the API wants a key this UI lacks
    with BackgroundServer(keyless) as ui:
        page.goto(f"{ui.url}/new")
        page.get_by_label("title 1").fill(engine.table.names[2])
        page.get_by_label("rating 1").select_option("7")
        page.get_by_role("button", name="Save as my profile").click()
        page.wait_for_selector("[role=alert]")
        assert "The profile was not saved" in page.get_by_role("alert").inner_text()
        assert "X-API-Key" in page.get_by_role("alert").inner_text()
