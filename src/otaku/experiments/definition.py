"""What an experiment is (arms with traffic shares) and which arm a user is in.

Assignment is a pure function of (experiment name, user id): sticky across requests, servers
and restarts, reproducible offline, and nothing is stored to remember it.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from otaku.pipeline.strategies import STRATEGY_TYPES

SHARE_TOLERANCE = 1e-6
MAX_ARMS = 10
_HASH_SPACE = float(2**64)


def _known_strategy(name: str) -> str:
    if name not in STRATEGY_TYPES:
        raise ValueError(f"must be one of {list(STRATEGY_TYPES)}")
    return name


Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class Arm(BaseModel):
    """One arm: the strategy (and optionally the registered model version) its users are
    served, and its share of the traffic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Label = Field(description="The arm's name (letters, digits, _ . -).")
    strategy: Annotated[str, AfterValidator(_known_strategy)] = Field(
        description="The strategy this arm's users are served."
    )
    share: float = Field(gt=0.0, le=1.0, description="Share of the experiment's users (0..1].")
    model_version: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,9}$",
        description="A registered model version this arm is served (default: the champion).",
    )


class ExperimentSpec(BaseModel):
    """An experiment's definition: 2..10 arms with distinct names whose shares add up to 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Label
    arms: tuple[Arm, ...] = Field(min_length=2, max_length=MAX_ARMS)
    description: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _arms_partition_traffic(self) -> "ExperimentSpec":
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be distinct, got {names}")
        total = sum(arm.share for arm in self.arms)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"arm shares must add up to 1, they add up to {total:g}")
        return self


@dataclass(frozen=True)
class Assignment:
    """A user's arm in the running experiment."""

    experiment: str
    arm: str
    strategy: str
    model_version: str | None = None  # a registered version; None: the champion


def hash_point(experiment: str, user_id: int) -> float:
    """Where a user falls in [0, 1) for this experiment (uniform, independent across
    experiments: a user's arm in one experiment says nothing about the next)."""
    digest = hashlib.blake2b(f"{experiment}\x00{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SPACE


def assign(spec: ExperimentSpec, user_id: int) -> Assignment:
    """The arm of ``user_id``: arms own consecutive slices of [0, 1) as wide as their shares."""
    point = hash_point(spec.name, user_id)
    upper = 0.0
    for arm in spec.arms:
        upper += arm.share
        if point < upper:
            return Assignment(spec.name, arm.name, arm.strategy, arm.model_version)
    last = spec.arms[-1]  # shares add up to 1 within rounding: the top sliver is the last arm's
    return Assignment(spec.name, last.name, last.strategy, last.model_version)


def parse_spec(text: str, where: str) -> ExperimentSpec:
    """An experiment from JSON text; a clear error naming ``where`` and the field otherwise."""
    try:
        return ExperimentSpec.model_validate(json.loads(text))
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not JSON ({error})") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'experiment'}: {e['msg']}"
            for e in error.errors()
        )
        raise ValueError(f"{where}: {problems}") from None


def parse_arm(text: str) -> Arm:
    """An arm from ``name=strategy:share[@version]`` (the CLI's form), e.g.
    ``control=seed:0.5`` or ``new=default:0.5@7`` (registered model version 7)."""
    name, _, rest = text.partition("=")
    strategy, _, share = rest.partition(":")
    share, _, version = share.partition("@")
    if not (name and strategy and share):
        raise ValueError(
            f"arm {text!r}: expected name=strategy:share[@version], e.g. control=seed:0.5"
        )
    try:
        return Arm(name=name, strategy=strategy, share=float(share), model_version=version or None)
    except (ValidationError, ValueError) as error:
        raise ValueError(f"arm {text!r}: {error}") from None
