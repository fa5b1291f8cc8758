"""The reference's own measures, reported beside the held-out protocol for comparison."""

import numpy as np
from scipy import sparse

from otaku.data.dataset import Dataset
from otaku.models.lightfm import LightFMConfig, fit_lightfm, hybrid_inputs

REFERENCE_PROTOCOL_NOTE = (
    "The reference's published protocol scores the overlap of the top 10 (watched anime not "
    "filtered) with the user's 10 top-rated watched anime. It is not a held-out measure: the "
    "target anime are in the training data, so a model is rewarded for recommending what the "
    "user has already seen and rated, which a real recommender must never do. It is shown only "
    "to compare with published figures."
)


def lightfm_interaction_split_metrics(
    data: Dataset, config: LightFMConfig, test_share: float = 0.2, k: int = 10
) -> dict[str, float]:
    """LightFM's own precision@k / recall@k on a random interaction split, as the reference
    reported them (lightfm.evaluation, training interactions excluded)."""
    from lightfm.evaluation import precision_at_k, recall_at_k

    inputs = hybrid_inputs(data)
    interactions = inputs.interactions
    rng = np.random.default_rng(config.seed)
    is_test = rng.random(interactions.nnz) < test_share

    def part(mask: np.ndarray) -> sparse.coo_matrix:
        return sparse.coo_matrix(
            (interactions.data[mask], (interactions.row[mask], interactions.col[mask])),
            shape=interactions.shape,
        )

    train, test = part(~is_test), part(is_test)
    model = fit_lightfm(
        config,
        train,
        inputs.user_features,
        inputs.item_features,
        label="LightFM (own split) epochs",
    )
    common = {
        "train_interactions": train,
        "user_features": inputs.user_features,
        "item_features": inputs.item_features,
        "k": k,
        "num_threads": config.num_threads,
    }
    return {
        f"precision@{k}": float(precision_at_k(model, test, **common).mean()),
        f"recall@{k}": float(recall_at_k(model, test, **common).mean()),
    }
