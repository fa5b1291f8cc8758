"""Named training presets: how much each component costs, chosen by name on the command line
(``--preset``) and recorded in the bundle. The budgets make training cost grow with a sample
of users, not with every rating, where a component is too costly for all of them."""

from dataclasses import dataclass, field, replace
from typing import Any

from otaku.models.lightfm import LightFMConfig
from otaku.models.rating import RatingModelConfig
from otaku.pipeline.components import ComponentsConfig
from otaku.pipeline.ranker import RankerConfig
from otaku.pipeline.sources import SourceSpec
from otaku.pipeline.sources.config import DEFAULT_SOURCES
from otaku.pipeline.training import TrainConfig


@dataclass(frozen=True)
class Preset:
    """Overrides of the reference's parameters, per component."""

    name: str
    description: str
    lightfm: dict[str, Any] = field(default_factory=dict)
    rating: dict[str, Any] = field(default_factory=dict)
    ranker: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "fast",
            "the default: LightFM 5 epochs on at most 500k interactions (a user sample; "
            "everyone else folded in from features); the rating model with learning rate 0.1, "
            "600 rounds, half the rows and 30% of the features per tree, on at most 500k "
            "ratings of whole users; collaborative sources on every rating",
            lightfm={"epochs": 5, "max_interactions": 500_000},
            rating={
                "learning_rate": 0.1,
                "num_boost_round": 600,
                "subsample": 0.5,
                "colsample_bytree": 0.3,
                "max_ratings": 500_000,
            },
        ),
        Preset(
            "reference",
            "the reference's parameters: LightFM 50 WARP epochs, LightGBM 2000 rounds, "
            "255 leaves, learning rate 0.01, every rating (cost grows with all ratings)",
        ),
        Preset(
            "quick",
            "small models for demos and tests: LightFM 10 epochs, 300 LightGBM rounds",
            lightfm={"epochs": 10},
            rating={"num_boost_round": 300, "learning_rate": 0.05},
            ranker={"num_boost_round": 150},
        ),
    )
}
DEFAULT_PRESET = "fast"


class UnknownPresetError(ValueError):
    """A preset name that is not in :data:`PRESETS`."""


def preset_config(
    name: str, seed: int, sources: tuple[SourceSpec, ...] = DEFAULT_SOURCES
) -> TrainConfig:
    """The training configuration of a named preset with the given seed and sources."""
    if name not in PRESETS:
        raise UnknownPresetError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    lightfm = replace(LightFMConfig(seed=seed), **preset.lightfm)
    rating = replace(RatingModelConfig(seed=seed), **preset.rating)
    ranker = replace(RankerConfig(seed=seed), **preset.ranker)
    components = ComponentsConfig(lightfm=lightfm, rating=rating, sources=sources, seed=seed)
    return TrainConfig(components, ranker, preset=name)
