"""Experiments and feedback: list experiments, start and stop them (admin), and a user's
"clicked" / "not interested" on a shown anime."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field, ValidationError

from otaku.columns import ID_MAX, ID_MIN
from otaku.experiments.definition import Arm, ExperimentSpec
from otaku.experiments.store import (
    StoredExperiment,
    check_model_versions,
    list_experiments,
    start_experiment,
    stop_experiment,
)
from otaku.pipeline.filters import InvalidInputError
from otaku.service.deps import (
    AdminKey,
    OnlineDep,
    ServedDep,
    SettingsDep,
    UsersDep,
    WriteAccess,
)
from otaku.service.logs import request_id_var
from otaku.service.schemas import Problem, StrictBody, StrictId
from otaku.service.users import DatabaseUnavailableError, UserDirectory
from otaku.storage.database import Database
from otaku.storage.registry import version_exists

experiments_router = APIRouter(prefix="/v1", tags=["experiments"])
admin_experiments_router = APIRouter(prefix="/admin", tags=["operations"])

UserId = Annotated[int, Path(ge=ID_MIN, le=ID_MAX, description="A user id.")]
AnimeId = Annotated[int, Path(ge=ID_MIN, le=ID_MAX, description="A MyAnimeList anime id.")]
ExperimentName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
FeedbackKind = Literal["clicked", "not_interested"]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "The X-API-Key header is missing or wrong."},
    404: {"model": Problem, "description": "Unknown user, anime or experiment."},
    503: {"model": Problem, "description": "The database is unavailable."},
}


class ExperimentOut(BaseModel):
    """An experiment: its arms and when it ran."""

    name: str
    description: str | None
    arms: list[Arm]
    running: bool
    started_at: datetime
    stopped_at: datetime | None

    @classmethod
    def of(cls, stored: StoredExperiment) -> "ExperimentOut":
        """From the stored experiment."""
        return cls(
            name=stored.spec.name,
            description=stored.spec.description,
            arms=list(stored.spec.arms),
            running=stored.running,
            started_at=stored.started_at,
            stopped_at=stored.stopped_at,
        )


class ExperimentList(BaseModel):
    """Every experiment, the newest first (at most one runs)."""

    experiments: list[ExperimentOut]


class ExperimentIn(BaseModel):
    """An experiment to start: 2..10 arms whose shares add up to 1."""

    arms: list[Arm] = Field(min_length=2, max_length=10)
    description: str | None = Field(default=None, max_length=2000)


class FeedbackIn(StrictBody):
    """A user's reaction to a shown anime."""

    anime_id: StrictId
    kind: FeedbackKind = Field(
        description='"clicked", or "not_interested" (never recommended to this user again).'
    )
    request_id: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="The X-Request-ID of the page it was shown on, if known."
    )


class FeedbackStored(BaseModel):
    """A stored feedback."""

    user_id: int
    anime_id: int
    kind: FeedbackKind
    created: bool = Field(description="False when the user had given it before (time updated).")


def _database(users: UserDirectory) -> Database:
    if users.database is None:
        raise DatabaseUnavailableError("no database is configured: experiments need one")
    return users.database


@experiments_router.get(
    "/experiments", response_model=ExperimentList, summary="Experiments, running and past"
)
def experiments(users: UsersDep) -> ExperimentList:
    """Every experiment with its arms; the one running (at most one) says `running: true`."""
    return ExperimentList(
        experiments=[ExperimentOut.of(e) for e in list_experiments(_database(users))]
    )


@experiments_router.post(
    "/users/{user_id}/feedback",
    response_model=FeedbackStored,
    responses=ERRORS,
    summary="Say a shown anime was clicked, or is not of interest",
    operation_id="give_feedback",
    dependencies=[WriteAccess],
)
def give_feedback(
    user_id: UserId, body: FeedbackIn, served: ServedDep, users: UsersDep
) -> FeedbackStored:
    """Store the user's "clicked" or "not interested"; an anime marked not interested is never
    recommended to them again (until DELETE takes it back)."""
    request_id = body.request_id or request_id_var.get()
    created = users.give_feedback(served.engine, user_id, body.anime_id, body.kind, request_id)
    return FeedbackStored(user_id=user_id, anime_id=body.anime_id, kind=body.kind, created=created)


@experiments_router.delete(
    "/users/{user_id}/feedback/{anime_id}",
    status_code=204,
    responses=ERRORS,
    summary="Take a feedback back",
    operation_id="withdraw_feedback",
    dependencies=[WriteAccess],
)
def withdraw_feedback(
    user_id: UserId,
    anime_id: AnimeId,
    users: UsersDep,
    kind: Annotated[FeedbackKind, Query()] = "not_interested",
) -> Response:
    """Remove a feedback ("not interested" by default: the anime may come back)."""
    users.withdraw_feedback(user_id, anime_id, kind)
    return Response(status_code=204)


@admin_experiments_router.put(
    "/experiments/{name}",
    response_model=ExperimentOut,
    status_code=201,
    responses={
        409: {"model": Problem, "description": "The name is taken, or one runs already."},
        **ERRORS,
    },
    summary="Start an experiment",
)
def start(
    name: ExperimentName,
    body: ExperimentIn,
    users: UsersDep,
    online: OnlineDep,
    settings: SettingsDep,
    _: AdminKey,
) -> ExperimentOut:
    """Start an experiment now (one runs at a time; every server follows within
    OTAKU_EXPERIMENT_POLL_SECONDS). Needs OTAKU_API_KEY, sent as X-API-Key."""
    try:
        spec = ExperimentSpec(name=name, arms=tuple(body.arms), description=body.description)
    except ValidationError as error:  # the arms together (names distinct, shares add up to 1)
        raise InvalidInputError("body.arms", error.errors()[0]["msg"]) from None
    try:
        check_model_versions(spec, lambda version: version_exists(settings, version))
    except ValueError as error:
        field, _, message = str(error).partition(": ")
        raise InvalidInputError(f"body.{field}", message) from None
    stored = start_experiment(_database(users), spec)
    online.running.refresh()
    return ExperimentOut.of(stored)


@admin_experiments_router.post(
    "/experiments/{name}/stop",
    response_model=ExperimentOut,
    responses=ERRORS,
    summary="Stop an experiment",
)
def stop(name: ExperimentName, users: UsersDep, online: OnlineDep, _: AdminKey) -> ExperimentOut:
    """Stop it: its users get the default strategy again; its impressions stay for reports."""
    stored = stop_experiment(_database(users), name)
    online.running.refresh()
    return ExperimentOut.of(stored)
