"""Item features: min-max scaled MAL numbers plus one-hot genres, type, source, age rating and
start-air decade. Columns absent from a catalog (the demo has fewer) are simply left out."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from otaku.columns import MAL_NUMERIC_COLUMNS, Columns


@dataclass(frozen=True)
class FeatureMatrix:
    """A dense feature matrix with its column names."""

    values: np.ndarray
    names: list[str]


def genre_vocabulary(catalog: pd.DataFrame) -> list[str]:
    """Sorted genre names found in the catalog."""
    return sorted({genre for genres in catalog[Columns.genres] for genre in genres})


def genre_matrix(catalog: pd.DataFrame, vocabulary: list[str]) -> np.ndarray:
    """Items x genres 0/1 matrix (genres outside ``vocabulary`` are ignored)."""
    position = {genre: i for i, genre in enumerate(vocabulary)}
    matrix = np.zeros((len(catalog), len(vocabulary)), dtype=np.float32)
    for row, genres in enumerate(catalog[Columns.genres]):
        for genre in genres:
            if genre in position:
                matrix[row, position[genre]] = 1.0
    return matrix


def _min_max(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros_like(values)
    low, high = float(finite.min()), float(finite.max())
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return np.nan_to_num(scaled, nan=0.0)


def _one_hot(values: pd.Series, prefix: str) -> tuple[np.ndarray, list[str]]:
    categories = sorted(value for value in values.dropna().unique() if str(value) != "")
    position = {value: i for i, value in enumerate(categories)}
    matrix = np.zeros((len(values), len(categories)), dtype=np.float32)
    for row, value in enumerate(values):
        if value in position:
            matrix[row, position[value]] = 1.0
    return matrix, [f"{prefix}={value}" for value in categories]


def build_item_features(catalog: pd.DataFrame) -> FeatureMatrix:
    """The item feature matrix of a catalog (rows aligned with the catalog)."""
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for column in MAL_NUMERIC_COLUMNS:
        if column in catalog.columns:
            blocks.append(_min_max(catalog[column].to_numpy(float))[:, None].astype(np.float32))
            names.append(column)
    vocabulary = genre_vocabulary(catalog)
    blocks.append(genre_matrix(catalog, vocabulary))
    names += [f"genre={genre}" for genre in vocabulary]
    decade = (catalog[Columns.start_year] // 10 * 10).map(
        lambda year: f"{int(year)}s" if pd.notna(year) else None
    )
    categorical = {
        "type": catalog[Columns.type],
        "source": catalog[Columns.source],
        "age_rating": catalog[Columns.age_rating],
        "decade": decade,
    }
    for prefix, values in categorical.items():
        matrix, matrix_names = _one_hot(values, prefix)
        blocks.append(matrix)
        names += matrix_names
    return FeatureMatrix(np.hstack(blocks).astype(np.float32), names)
