"""Validation helpers that turn bad input into errors naming file, row, column and expectation."""

from collections.abc import Callable, Sequence
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
        self.detail = message
        where = [self.path]
        if row is not None:
            where.append(f"data row {row} (line {row + 1})")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {message}")


def rows_later(error: DataValidationError, offset: int) -> DataValidationError:
    """The same error for a part of a file that starts ``offset`` data rows in."""
    row = None if error.row is None else error.row + offset
    return DataValidationError(error.path, error.detail, row=row, column=error.column)


def require_columns(frame: pd.DataFrame, path: Path | str, required: Sequence[str]) -> None:
    """Raise if any required column is absent, listing what is missing and what was found."""
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataValidationError(
            path,
            f"missing required column(s) {missing}; found columns {list(frame.columns)}",
        )


def fail_at_first(
    bad: pd.Series, path: Path | str, column: str | None, message: Callable[[int], str]
) -> None:
    """Raise for the first true row of ``bad``; ``message`` describes that row (by position)."""
    if bool(bad.any()):
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(path, message(position), row=position + 1, column=column)


def parse_integer_column(frame: pd.DataFrame, path: Path | str, column: str) -> pd.Series:
    """Parse ``column`` as integers; raise naming the first row that is not an integer."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() | (values != np.floor(values.fillna(0))) | (values.abs() >= 2.0**63)
    fail_at_first(
        bad, path, column, lambda row: f"expected an integer (64-bit), got {raw.iloc[row]!r}"
    )
    return values.astype(np.int64)


def check_range(values: pd.Series, path: Path | str, column: str, low: int, high: int) -> None:
    """Raise naming the first row whose value is outside ``low..high``."""
    fail_at_first(
        (values < low) | (values > high),
        path,
        column,
        lambda row: f"expected a value in {low}..{high}, got {values.iloc[row]}",
    )
