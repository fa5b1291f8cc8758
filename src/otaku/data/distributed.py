"""Rating files read and validated on a Dask cluster: ``dask.dataframe`` cuts each file into
blocks, every block is parsed and checked on a worker by the same parser as the local path
(:func:`otaku.data.sources.parse_ratings`), and only the compact parsed columns (9 bytes a
rating) come back. A bad value is reported with its row in the whole file, as locally. The
workers must see the file at the same path (a shared volume); a file they cannot read is
parsed in this process instead.
"""

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from otaku.data.sources import (
    DuplicatePolicy,
    combine_ratings,
    load_ratings,
    parse_ratings,
    rating_columns_of,
)
from otaku.data.validation import DataValidationError, rows_later

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)
BLOCK_BYTES = 32 * 1024 * 1024  # per task: ~1M rows of rating_complete.csv


def load_rating_files_on_cluster(
    client: "Client", paths: Sequence[Path], duplicates: DuplicatePolicy = "keep_last"
) -> pd.DataFrame:
    """Read, validate and combine rating files on the cluster's workers (see
    :func:`otaku.data.sources.load_rating_files` for the meaning)."""
    if not paths:
        raise ValueError("at least one rating file is required")
    frames = [
        _load_on_cluster(client, path) if _workers_can_read(client, path) else load_ratings(path)
        for path in paths
    ]
    return combine_ratings(frames, paths, duplicates)


def _workers_can_read(client: "Client", path: Path) -> bool:
    """Whether every worker sees ``path`` (a shared volume); else it is parsed here."""
    seen = client.run(os.access, str(path.resolve()), os.R_OK)
    if all(seen.values()):
        return True
    blind = sorted(worker for worker, readable in seen.items() if not readable)
    log.warning("Dask worker(s) %s cannot read %s: parsing it in this process", blind, path)
    return False


def _load_on_cluster(client: "Client", path: Path) -> pd.DataFrame:
    import dask
    import dask.dataframe as dd

    columns = rating_columns_of(path)  # a missing or unreadable file fails here, locally
    # Every column as text: a block's types never depend on its values, and the parser
    # names the first value that is not an integer (as it does locally).
    blocks = dd.read_csv(
        str(path.resolve()),
        usecols=columns,
        dtype=str,
        keep_default_na=False,
        blocksize=None if path.suffix == ".gz" else BLOCK_BYTES,
    ).to_delayed()
    parsed = client.gather(client.compute([dask.delayed(_parse_block)(b, path) for b in blocks]))
    offset, frames = 0, []
    for frame, error, n_rows in parsed:
        if error is not None:
            detail, row, column = error
            raise rows_later(DataValidationError(path, detail, row=row, column=column), offset)
        frames.append(frame)
        offset += n_rows
    return pd.concat(frames, ignore_index=True)


def _parse_block(
    block: pd.DataFrame, path: Path
) -> tuple[pd.DataFrame | None, tuple[str, int | None, str | None] | None, int]:
    """Runs on a worker: a block parsed, or where it failed (errors travel as plain values:
    the exception's own constructor does not survive pickling), and its row count."""
    try:
        return parse_ratings(block.reset_index(drop=True), path), None, len(block)
    except DataValidationError as error:
        return None, (error.detail, error.row, error.column), len(block)
