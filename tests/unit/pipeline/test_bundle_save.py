"""Saving a bundle: a save that crashed earlier does not block the next one."""

from pathlib import Path

from otaku.pipeline.bundle import Bundle
from otaku.pipeline.training import TrainedModels


def test_a_crashed_save_left_behind_does_not_block_saving(
    trained: TrainedModels, tmp_path: Path
) -> None:
    stale = tmp_path / "v1.partial"
    stale.mkdir()
    (stale / "models.joblib").write_bytes(b"half written")
    saved = Bundle(trained, {"version": "v1"}).save(tmp_path / "v1")
    assert not stale.exists()
    assert Bundle.load(saved).version == "v1"
