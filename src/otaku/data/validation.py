"""Validation helpers that turn bad input into errors naming file, row, column and expectation."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


class DataValidationError(ValueError):
    """A source file failed validation; the message says where and what was expected."""

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = str(path)
        self.row = row
        self.column = column
        where = [self.path]
        if row is not None:
            where.append(f"data row {row} (line {row + 1})")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {message}")


def require_columns(frame: pd.DataFrame, path: Path | str, required: Sequence[str]) -> None:
    """Raise if any required column is absent, listing what is missing and what was found."""
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataValidationError(
            path,
            f"missing required column(s) {missing}; found columns {list(frame.columns)}",
        )


def parse_integer_column(
    frame: pd.DataFrame, path: Path | str, column: str, *, allow_blank: bool = False
) -> pd.Series:
    """Parse ``column`` as integers; raise naming the first row that is not an integer."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    blank = raw.isna() | (raw.astype("string").str.strip() == "")
    bad = values.isna() | (values.notna() & (values != np.floor(values.fillna(0))))
    if allow_blank:
        bad &= ~blank
    if bool(bad.any()):
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            path,
            f"expected an integer, got {raw.iloc[position]!r}",
            row=position + 1,
            column=column,
        )
    if allow_blank:
        return values.astype("Int64")
    return values.astype(np.int64)


def check_range(values: pd.Series, path: Path | str, column: str, low: int, high: int) -> None:
    """Raise naming the first row whose value is outside ``low..high``."""
    bad = (values < low) | (values > high)
    if bool(bad.any()):
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            path,
            f"expected a value in {low}..{high}, got {values.iloc[position]}",
            row=position + 1,
            column=column,
        )
