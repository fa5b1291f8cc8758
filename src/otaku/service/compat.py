"""The reference service's endpoint, ``POST /recommend/``: one input that is a user id or an
anime title, answered with a watched list and recommendations."""

import re
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from otaku.columns import ID_MAX, ID_MIN
from otaku.pipeline.filters import InvalidInputError
from otaku.pipeline.profiles import NewUser, UnknownUserError
from otaku.service.deps import ServedDep, UsersDep, check_history_access
from otaku.service.routes import AUTH_ERRORS, NOT_FOUND
from otaku.service.schemas import (
    MAX_PREFERENCES,
    AnimeSummary,
    GenreWeight,
    Name,
    StrictBody,
    StrictId,
)

compat_router = APIRouter()
_DECIMAL = re.compile(r"[0-9]{1,20}")


class CompatRequest(StrictBody):
    """The reference service's request: a user id (or an anime title) and genre weights."""

    user_input: StrictId | Annotated[StrictStr, Field(min_length=1, max_length=300)] = Field(
        description="A user id, or an anime title (similar anime)."
    )
    user_preferences: dict[Name, GenreWeight] = Field(
        default_factory=dict, max_length=MAX_PREFERENCES
    )

    model_config = ConfigDict(  # merged with StrictBody's
        json_schema_extra={
            "examples": [
                {"user_input": 1, "user_preferences": {}},
                {"user_input": 999999999, "user_preferences": {"Action": 1, "Romance": 0.4}},
                {"user_input": "Cowboy Bebop", "user_preferences": {}},
            ]
        },
    )


class CompatAnime(BaseModel):
    """An anime in the reference service's answer."""

    anime_id: int
    name: str
    genres: list[str]
    type: str | None = None
    episodes: int | None = None
    mal_score: float | None = None
    predicted_rating: float | None = None
    rating: int | None = Field(default=None, description="The user's own rating (watched list).")
    explanation: str | None = None


class CompatResponse(BaseModel):
    """The reference service's answer: what the user watched and what to watch next."""

    user_input: int | str
    watched: list[CompatAnime]
    recommendations: list[CompatAnime]
    degraded: str | None = None


def _compat(info: AnimeSummary, **extra: object) -> CompatAnime:
    return CompatAnime.model_validate({**info.model_dump(), **extra})


@compat_router.post(
    "/recommend/",
    response_model=CompatResponse,
    responses={**NOT_FOUND, **AUTH_ERRORS},
    summary="Reference-service compatible recommendations",
    tags=["compatibility"],
)
def recommend_compat(
    request: CompatRequest, http: Request, served: ServedDep, users: UsersDep
) -> CompatResponse:
    """The reference service's endpoint: `user_input` a user id (known: their watched list and
    recommendations; unknown: a new user with `user_preferences`) or an anime title (similar
    anime). A known user's watched list is private when an API key is configured."""
    engine = served.engine
    user_input = request.user_input
    degraded = None
    if isinstance(user_input, str) and not _DECIMAL.fullmatch(user_input.strip()):
        match = engine.find_title(user_input)
        page = engine.similar(engine.anime_id_of(match.item))
        watched: list[CompatAnime] = []
    else:
        user_id = _compat_user_id(user_input)
        try:
            current = users.current(engine, user_id)
            check_history_access(http.app.state.settings, http.headers.get("X-API-Key"))
            page = engine.recommend_for_profile(current.profile)
            history = engine.history_of(current.profile)
            watched = [_compat(AnimeSummary.of(info), rating=r) for info, r in history]
            degraded = current.degraded
        except UnknownUserError:
            page = engine.recommend_for_new_user(NewUser(preferences=request.user_preferences))
            watched = []
    recommendations = [
        _compat(
            AnimeSummary.of(rec.anime),
            predicted_rating=round(rec.predicted_rating, 3),
            explanation=rec.explanation,
        )
        for rec in page.items
    ]
    return CompatResponse(
        user_input=user_input,
        watched=watched,
        recommendations=recommendations,
        degraded=degraded,
    )


def _compat_user_id(user_input: int | str) -> int:
    """A user id from the reference route's input (an integer, or decimal digits)."""
    user_id = int(user_input)
    if not ID_MIN <= user_id <= ID_MAX:
        raise InvalidInputError("user_input", f"a user id must be in {ID_MIN}..{ID_MAX}")
    return user_id
