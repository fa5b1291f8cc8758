"""The seed algorithm written the way the reference service computes it, for comparison only.

Per request it builds a pandas frame of the user × every anime (user features repeated on
every row, joined with the item vectors), predicts every row with the LightGBM rating model,
merges the user's history to drop watched anime, sorts, and — when the user liked something —
scores the top 1000 by cosine similarity to the mean vector of their favourites, then merges
the catalog for names. Same bundle, same model, same answer as the engine's seed strategy;
only the way it is computed differs.
"""

import numpy as np
import pandas as pd

from otaku.columns import LIKED_THRESHOLD, Columns
from otaku.pipeline.seed import CANDIDATE_POOL
from otaku.pipeline.training import TrainedModels


def reference_recommend(models: TrainedModels, user_id: int, k: int = 10) -> pd.DataFrame:
    """The reference service's answer for one known user: anime ids, names, predictions."""
    parts = models.components
    assert parts.rating_model is not None
    user = int(parts.state.users.to_internal(np.array([user_id]))[0])
    user_columns = [f"user_{i}" for i in range(parts.user_features.shape[1])]
    item_columns = [f"item_{i}" for i in range(parts.item_vectors.shape[1])]
    users = pd.DataFrame([parts.user_features[user]], columns=user_columns)
    items = pd.DataFrame(parts.item_vectors, columns=item_columns)
    items[Columns.anime_id] = parts.catalog[Columns.anime_id].to_numpy()
    frame = users.merge(items, how="cross")
    frame["predicted"] = parts.rating_model.predict(
        frame[user_columns + item_columns].to_numpy(dtype=np.float32)
    )
    row = parts.ratings[user]
    history = pd.DataFrame(
        {
            Columns.anime_id: parts.catalog[Columns.anime_id].to_numpy()[row.indices],
            Columns.rating: row.data,
        }
    )
    frame = frame.merge(history, on=Columns.anime_id, how="left")
    unwatched = frame[frame[Columns.rating].isna()]
    ranked = unwatched.sort_values("predicted", ascending=False, kind="stable")
    if history.empty or history[Columns.rating].max() < LIKED_THRESHOLD:
        chosen = ranked.head(k)
    else:
        pool = ranked.head(CANDIDATE_POOL).copy()
        best = history[history[Columns.rating] == history[Columns.rating].max()]
        favourites = items[items[Columns.anime_id].isin(best[Columns.anime_id])]
        target = _unit(favourites[item_columns].to_numpy()).mean(axis=0)
        pool["similarity"] = _unit(pool[item_columns].to_numpy()) @ target
        similar = pool.sort_values("similarity", ascending=False, kind="stable").head(k)
        chosen = similar.sort_values("predicted", ascending=False, kind="stable")
    names = parts.catalog[[Columns.anime_id, Columns.name]]
    return chosen[[Columns.anime_id, "predicted"]].merge(names, on=Columns.anime_id, how="left")


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
