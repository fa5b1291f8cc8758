"""Experiment definitions and the stable assignment of users to arms."""

from collections import Counter

import pytest

from otaku.experiments.definition import (
    Arm,
    ExperimentSpec,
    assign,
    hash_point,
    parse_arm,
    parse_spec,
)


def _spec(name: str = "ab1", shares: tuple[float, ...] = (0.5, 0.5)) -> ExperimentSpec:
    strategies = ["default", "seed", "default"]
    return ExperimentSpec(
        name=name,
        arms=tuple(
            Arm(name=f"arm{i}", strategy=strategies[i], share=share)
            for i, share in enumerate(shares)
        ),
    )


def test_assignment_is_sticky_and_reproducible() -> None:
    spec = _spec()
    first = [assign(spec, user_id).arm for user_id in range(1000)]
    again = [assign(_spec(), user_id).arm for user_id in range(1000)]
    assert first == again
    assert hash_point("ab1", 7) == hash_point("ab1", 7)


@pytest.mark.parametrize("shares", [(0.5, 0.5), (0.2, 0.3, 0.5), (0.9, 0.1)])
def test_traffic_splits_as_the_shares_say(shares: tuple[float, ...]) -> None:
    spec = _spec(shares=shares)
    users = 100_000
    counts = Counter(assign(spec, user_id).arm for user_id in range(users))
    for i, share in enumerate(shares):
        # binomial sd at 100k users is <= 0.0016: 0.01 is over six of them
        assert counts[f"arm{i}"] / users == pytest.approx(share, abs=0.01)


def test_experiments_assign_independently() -> None:
    users = range(20_000)
    first = [assign(_spec("one"), u).arm for u in users]
    second = [assign(_spec("two"), u).arm for u in users]
    together = Counter(zip(first, second, strict=True))
    for pair in [("arm0", "arm0"), ("arm0", "arm1"), ("arm1", "arm0"), ("arm1", "arm1")]:
        assert together[pair] / len(users) == pytest.approx(0.25, abs=0.02)


def test_the_arm_carries_its_strategy() -> None:
    spec = _spec()
    for user_id in range(50):
        chosen = assign(spec, user_id)
        assert chosen.strategy == {"arm0": "default", "arm1": "seed"}[chosen.arm]
        assert chosen.experiment == "ab1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"name": "x", "arms": [{"name": "a", "strategy": "seed", "share": 0.5},'
            ' {"name": "b", "strategy": "seed", "share": 0.4}]}',
            "add up to 1",
        ),
        (
            '{"name": "x", "arms": [{"name": "a", "strategy": "seed", "share": 0.5},'
            ' {"name": "a", "strategy": "seed", "share": 0.5}]}',
            "distinct",
        ),
        (
            '{"name": "x", "arms": [{"name": "a", "strategy": "nope", "share": 0.5},'
            ' {"name": "b", "strategy": "seed", "share": 0.5}]}',
            "arms.0.strategy",
        ),
        ('{"name": "x", "arms": [{"name": "a", "strategy": "seed", "share": 1}]}', "arms"),
        ("{not json", "not JSON"),
    ],
)
def test_a_bad_definition_says_which_field(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="OTAKU_EXPERIMENT") as raised:
        parse_spec(text, "OTAKU_EXPERIMENT")
    assert message in str(raised.value)


def test_arms_from_the_command_line() -> None:
    assert parse_arm("control=seed:0.5") == Arm(name="control", strategy="seed", share=0.5)
    with pytest.raises(ValueError, match="name=strategy:share"):
        parse_arm("control")
    with pytest.raises(ValueError, match="control=unknown"):
        parse_arm("control=unknown:0.5")


def test_an_arm_may_name_a_registered_model_version() -> None:
    arm = parse_arm("new=default:0.5@7")
    assert (arm.strategy, arm.share, arm.model_version) == ("default", 0.5, "7")
    spec = ExperimentSpec(name="v", arms=(arm, Arm(name="old", strategy="default", share=0.5)))
    assert {assign(spec, u).model_version for u in range(100)} == {"7", None}
    with pytest.raises(ValueError, match="model_version"):
        Arm(name="x", strategy="default", share=1, model_version="latest")
