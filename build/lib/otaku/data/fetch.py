"""Download the Kaggle dataset with ``kagglehub``; offline, explain where to put the files."""

import shutil
from pathlib import Path

KAGGLE_DATASET = "hernan4444/anime-recommendation-database-2020"
WANTED = ("anime.csv", "anime_with_synopsis.csv", "rating_complete.csv")
OFFLINE_HELP = (
    "Download https://www.kaggle.com/datasets/{dataset} by hand and put {files} in {dest} "
    "(gzip is fine), then run `otaku train --data {dest}`. Without data, `otaku train --demo` "
    "uses the bundled MAL catalog with simulated users."
)


class FetchError(RuntimeError):
    """The dataset could not be downloaded; the message says what to do instead."""


def _help(dest: Path) -> str:
    return OFFLINE_HELP.format(dataset=KAGGLE_DATASET, files=", ".join(WANTED), dest=dest)


def fetch_dataset(dest: Path) -> list[Path]:
    """Download the dataset and copy its files into ``dest``; returns the copied paths."""
    try:
        import kagglehub
    except ImportError as error:
        raise FetchError(
            "downloading needs the 'fetch' extra: pip install 'otaku[fetch]'. " + _help(dest)
        ) from error
    try:
        downloaded = Path(kagglehub.dataset_download(KAGGLE_DATASET))
    except Exception as error:  # kagglehub raises many network/auth error types
        raise FetchError(
            f"could not download {KAGGLE_DATASET} ({type(error).__name__}: {error}). "
            "Are you offline, or without Kaggle credentials (~/.kaggle/kaggle.json)? " + _help(dest)
        ) from error
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in WANTED:
        source = next(downloaded.rglob(name), None)
        if source is None:
            raise FetchError(f"the download at {downloaded} lacks {name}. " + _help(dest))
        target = dest / name
        shutil.copyfile(source, target)
        copied.append(target)
    return copied
