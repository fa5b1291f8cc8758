"""Candidate sources are plug-ins: a toy source in one file plus one entry in a sources file
trains and serves; the sources file is checked; a bundle whose ranker and sources disagree is
refused when it loads, with a message that says so."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from otaku.data.dataset import Dataset
from otaku.pipeline.bundle import Bundle
from otaku.pipeline.candidates import candidate_features
from otaku.pipeline.components import text_embeddings_for
from otaku.pipeline.engine import Engine
from otaku.pipeline.sources.builtin import principal_directions
from otaku.pipeline.sources.config import DEFAULT_SOURCES, SourcesConfigError, load_sources
from otaku.pipeline.training import BundleMismatchError, TrainConfig, TrainedModels, fit_all

TOY = """
[[source]]
name = "acclaimed"
kind = "acclaimed"
quota = 20
module = "tests.unit.pipeline.toy_source"
"""


@pytest.fixture(scope="module")
def with_toy(
    small_dataset: Dataset, quick_config: TrainConfig, tmp_path_factory: pytest.TempPathFactory
) -> TrainedModels:
    path = tmp_path_factory.mktemp("sources") / "sources.toml"
    path.write_text(TOY)
    sources = load_sources(path)
    config = replace(quick_config, components=replace(quick_config.components, sources=sources))
    config = replace(config, components=config.components.with_source_params("ials", factors=8))
    return fit_all(small_dataset, config, text_embeddings_for(small_dataset, None, None))


def test_a_toy_source_trains_and_serves(with_toy: TrainedModels, tmp_path: Path) -> None:
    assert list(with_toy.components.sources)[-1] == "acclaimed"
    assert {"acclaimed_score", "acclaimed_rank", "acclaimed_z"} <= set(with_toy.feature_names)
    engine = Engine(with_toy, {"version": "toy"})
    user_id = int(engine.known_user_ids[0])
    page = engine.recommend_for_user(user_id, k=10)
    assert len(page.items) == 10
    # the toy's 20 best unwatched anime are among the candidates the ranker scores
    parts = with_toy.components
    profile = engine.known_profile(user_id)
    allowed = np.ones((1, engine.table.n_items), dtype=bool)
    allowed[0, profile.rated_items] = False
    context = profile.context(engine.table.n_items)
    candidates, rows = candidate_features(
        parts.sources, parts.item_numbers, parts.item_genres, context, allowed
    )
    acclaimed = np.where(allowed[0], parts.sources["acclaimed"].score(context)[0], -np.inf)
    best_twenty = np.sort(np.nan_to_num(acclaimed, nan=-np.inf))[::-1][19]
    assert (acclaimed[candidates[0]] >= best_twenty).sum() >= 20
    assert rows[0].shape[1] == len(with_toy.feature_names)
    saved = Bundle(with_toy, {"version": "toy"}).save(tmp_path / "toy")
    again = Engine(Bundle.load(saved).models, {"version": "toy"})
    assert [i.anime.anime_id for i in again.recommend_for_user(user_id, k=10).items] == [
        i.anime.anime_id for i in page.items
    ]


def test_a_bundle_whose_ranker_and_sources_disagree_is_refused_at_load(
    with_toy: TrainedModels, tmp_path: Path
) -> None:
    sources = dict(with_toy.components.sources)
    del sources["acclaimed"]  # as if the plug-in were dropped from the configuration
    broken = TrainedModels(replace(with_toy.components, sources=sources), with_toy.ranker, {})
    saved = Bundle(broken, {"version": "broken"}).save(tmp_path / "broken")
    with pytest.raises(BundleMismatchError, match=r"retrain.*") as error:
        Bundle.load(saved)
    assert "acclaimed_score" in str(error.value) and str(saved) in str(error.value)
    with pytest.raises(BundleMismatchError):
        Engine(broken, {"version": "broken"})


def test_entries_change_turn_off_or_add_sources(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        '[[source]]\nname = "ials"\nparams = {factors = 256}\n'
        '[[source]]\nname = "text"\nquota = 0\n'
    )
    sources = {spec.name: spec for spec in load_sources(path)}
    assert "text" not in sources
    assert sources["ials"].params["factors"] == 256 and sources["ials"].quota == 50
    assert list(sources) == [s.name for s in DEFAULT_SOURCES if s.name != "text"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[source]]\nname = "x"\nkind = "nope"\nquota = 5\n', "source 'x': 'kind' must be one of"),
        ('[[source]]\nname = "ease"\nquota = -1\n', "source 'ease': 'quota' must be an integer"),
        ('[[source]]\nname = "ease"\nquota = true\n', "'quota' must be an integer"),
        ('[[source]]\nkind = "ease"\n', "source #1: 'name' must be a non-empty string"),
        ('[[source]]\nname = "e"\nkind = "ease"\nqouta = 3\n', "unknown field(s) ['qouta']"),
        ('[[source]]\nname = "t"\nkind = "x"\nmodule = "no.such.module"\n', "cannot import"),
        ("[[source]\n", "sources.toml"),
    ],
)
def test_a_bad_sources_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    with pytest.raises(SourcesConfigError) as error:
        load_sources(path)
    assert message in str(error.value)


def test_turning_every_source_off_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        "".join(
            f'[[source]]\nname = "{s.name}"\nquota = 0\ncold_quota = 0\n' for s in DEFAULT_SOURCES
        )
    )
    with pytest.raises(SourcesConfigError, match="at least one"):
        load_sources(path)


def test_a_bundle_from_another_otaku_version_is_refused_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import sys

    import joblib

    (tmp_path / "vanished.py").write_text("class OldComponents:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import vanished

    bundle = tmp_path / "old"
    bundle.mkdir()
    joblib.dump(vanished.OldComponents(), bundle / "models.joblib")
    (bundle / "metadata.json").write_text(json.dumps({"version": "old"}))
    monkeypatch.delitem(sys.modules, "vanished")
    (tmp_path / "vanished.py").unlink()  # the class is gone, as after an upgrade
    with pytest.raises(BundleMismatchError, match=r"another otaku version.*retrain it"):
        Bundle.load(bundle)


def test_the_service_says_why_a_mismatched_bundle_is_not_served(
    with_toy: TrainedModels, tmp_path: Path
) -> None:
    import time

    from fastapi.testclient import TestClient

    from otaku.config import Settings
    from otaku.service.app import create_app

    sources = {k: v for k, v in with_toy.components.sources.items() if k != "acclaimed"}
    broken = TrainedModels(replace(with_toy.components, sources=sources), with_toy.ranker, {})
    saved = Bundle(broken, {"version": "broken"}).save(tmp_path / "broken")
    app = create_app(Settings(home=tmp_path / "home", bundle_path=saved))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while app.state.holder.problem == "the model is loading" and time.monotonic() < deadline:
            time.sleep(0.1)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "acclaimed_score" in ready.json()["detail"] and "retrain" in ready.json()["detail"]


def test_each_source_is_timed_apart_from_the_model_it_shares_a_name_with(
    with_toy: TrainedModels,
) -> None:
    timings = with_toy.components.timings
    assert {f"source.{name}" for name in with_toy.components.sources} <= set(timings)
    # LightFM is fitted once, as a model; its source only reuses it
    assert timings["lightfm"] > 10 * timings["source.lightfm"]


def test_the_text_source_keeps_the_leading_directions_of_the_embeddings() -> None:
    rng = np.random.default_rng(3)
    low_rank = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 40))  # rank 6 in 40 columns
    noisy = low_rank + rng.normal(scale=0.05, size=low_rank.shape)
    reduced, kept = principal_directions(noisy.astype(np.float32), 6)
    assert reduced.shape == (300, 6) and reduced.dtype == np.float32
    assert reduced.flags.c_contiguous
    assert 0.99 < kept < 1.0
    # dot products between items survive the reduction (what the source's scores are)
    np.testing.assert_allclose(reduced @ reduced.T, noisy @ noisy.T, rtol=0.05, atol=2.0)
    whole, everything = principal_directions(noisy.astype(np.float32), 0)
    assert whole.shape == (300, 40) and everything == 1.0
    zeros, _ = principal_directions(np.zeros((5, 40), np.float32), 6)
    assert zeros.shape == (5, 40) and not zeros.any()  # no text: nothing to reduce
    with pytest.raises(ValueError, match="'dimensions'"):
        principal_directions(noisy, -1)
