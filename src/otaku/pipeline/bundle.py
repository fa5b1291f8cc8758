"""One versioned artifact: every fitted part, id maps and metadata, saved as a directory."""

import json
import platform
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import joblib

from otaku.pipeline.training import BundleMismatchError, TrainedModels, check_ranker_features

MODELS_FILE = "models.joblib"
METADATA_FILE = "metadata.json"
_LIBRARIES = (
    "otaku",
    "numpy",
    "pandas",
    "scipy",
    "lightgbm",
    "implicit",
    "rectools-lightfm",
    "sentence-transformers",
    "torch",
    "mlflow-skinny",
)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a bundle depends on."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def new_version_id() -> str:
    """A sortable, unique bundle version id."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


@dataclass
class Bundle:
    """Trained models plus metadata (data hash, parameters, metrics, library versions)."""

    models: TrainedModels
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        """The bundle's version id."""
        return str(self.metadata["version"])

    def save(self, directory: Path) -> Path:
        """Write the bundle into ``directory`` (created; written atomically via a temp dir)."""
        temporary = directory.with_name(directory.name + ".partial")
        shutil.rmtree(temporary, ignore_errors=True)  # left by a save that crashed: never a bundle
        temporary.mkdir(parents=True)
        joblib.dump(self.models, temporary / MODELS_FILE, compress=3)
        (temporary / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2, default=str))
        temporary.rename(directory)
        return directory

    @classmethod
    def load(cls, directory: Path) -> "Bundle":
        """Read a bundle written by :meth:`save`."""
        metadata_path = directory / METADATA_FILE
        if not metadata_path.exists():
            raise FileNotFoundError(f"{directory} is not a bundle (no {METADATA_FILE})")
        try:
            models = joblib.load(directory / MODELS_FILE)
        except (AttributeError, ImportError) as error:  # a class this otaku no longer has
            raise BundleMismatchError(
                f"{directory} was written by another otaku version ({error}); retrain it"
            ) from None
        if not isinstance(models, TrainedModels):
            raise TypeError(f"{directory / MODELS_FILE} does not hold trained models")
        try:
            check_ranker_features(models)
        except BundleMismatchError as error:
            raise BundleMismatchError(f"{directory}: {error}") from None
        return cls(models, json.loads(metadata_path.read_text()))
