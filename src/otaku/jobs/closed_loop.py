"""The closed loop: simulated users ask the served path for recommendations and act on them
(see :mod:`otaku.jobs.simulate`); the experiment report then measures the arms on people the
model never saw."""

import numpy as np

from otaku.jobs.simulate import DayOutcome, forget_truth, simulate_arrivals, truth_of
from otaku.service.model import ServedModel
from otaku.service.online import NO_ARM, OnlineExperiments, recommend_known_user
from otaku.service.users import UserDirectory
from otaku.storage.database import Database
from otaku.storage.models import NOT_INTERESTED


def simulate_day(
    day: int,
    served: ServedModel,
    users: UserDirectory,
    online: OnlineExperiments,
    seed: int,
    arrivals: tuple[int, int] = (10, 25),
    starter_ratings: int = 5,
    dismiss_share: float = 0.2,
    k: int = 10,
) -> DayOutcome:
    """One day: users arrive with ``starter_ratings`` of their ratings; then every arrived
    user asks for ``k`` recommendations, rates the shown anime they truly rated (their true
    rating) and marks each other shown anime "not interested" with ``dismiss_share``."""
    if not 0 <= dismiss_share <= 1:
        raise ValueError(f"dismiss_share must be within 0..1, got {dismiss_share}")
    database = _database(users)
    arrived = simulate_arrivals(database, seed + day, *arrivals, starter_ratings=starter_ratings)
    rng = np.random.default_rng([seed, day])
    outcome = DayOutcome(day, len(arrived.user_ids), 0, 0, 0)
    for user_id, truth in sorted(truth_of(database).items()):
        answer = recommend_known_user(served, users, online, user_id, k)
        engine = answer.engine
        arm = answer.assignment.arm if answer.assignment else NO_ARM
        outcome.arms[arm] = outcome.arms.get(arm, 0) + 1
        outcome.asked += 1
        shown = [item.anime.anime_id for item in answer.page.items]
        watched = [anime_id for anime_id in shown if anime_id in truth]
        for anime_id in watched:
            users.rate(engine, user_id, anime_id, truth[anime_id])
        forget_truth(database, user_id, watched)
        outcome.rated += len(watched)
        for anime_id in shown:
            if anime_id not in truth and rng.random() < dismiss_share:
                users.give_feedback(engine, user_id, anime_id, NOT_INTERESTED, None)
                outcome.dismissed += 1
    online.impressions.flush()
    return outcome


def _database(users: UserDirectory) -> Database:
    if users.database is None:
        raise ValueError("the closed loop needs a database")
    return users.database
