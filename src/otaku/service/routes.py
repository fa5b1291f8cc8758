"""The REST routes: validate, call the engine, map to a response schema."""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from otaku.columns import ID_MAX, ID_MIN
from otaku.pipeline.pages import DEFAULT_K, MAX_K, MAX_OFFSET
from otaku.pipeline.profiles import NewUser
from otaku.service.deps import (
    AdminKey,
    HistoryAccess,
    MetricsDep,
    OnlineDep,
    ServedDep,
    UsersDep,
    WriteAccess,
)
from otaku.service.online import recommend_known_user
from otaku.service.schemas import (
    AnimeDetail,
    AnimeSummary,
    Filters,
    GenreList,
    ModelInfo,
    NewUserIn,
    NewUserRequest,
    Problem,
    RatedAnime,
    RatingStored,
    RatingValue,
    RecommendationPage,
    Reloaded,
    SearchResult,
    SearchResults,
    SimilarPage,
    StrategyInfo,
    StrategyName,
    UserCreated,
    UserProfile,
)

router = APIRouter(prefix="/v1")
admin_router = APIRouter(prefix="/admin", tags=["operations"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Unknown id, or no anime by that title."}
}
UserId = Annotated[int, Path(ge=ID_MIN, le=ID_MAX, description="A user id.")]
AnimeId = Annotated[int, Path(ge=ID_MIN, le=ID_MAX, description="A MyAnimeList anime id.")]
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "The X-API-Key header is missing or wrong."},
    503: {"model": Problem, "description": "The database is unavailable."},
}


def _links(**targets: tuple[str, dict[str, str]]) -> dict[str, Any]:
    """OpenAPI links: what a client (or a stateful fuzzer) can call next with this answer."""
    return {
        name: {"operationId": operation, "parameters": parameters}
        for name, (operation, parameters) in targets.items()
    }


_USER_FROM_BODY = {"user_id": "$response.body#/user_id"}
_RATING_FROM_BODY = {**_USER_FROM_BODY, "anime_id": "$response.body#/anime_id"}


def _json(model: BaseModel) -> Response:
    """A model serialised once (returning the model would make FastAPI validate it again)."""
    return Response(model.model_dump_json(), media_type="application/json")


class PageQuery(Filters):
    """Paging, strategy and filters, as query parameters."""

    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K, description="Items per page (1-100).")
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, description="Items to skip.")
    strategy: StrategyName | None = Field(
        default=None,
        description="A strategy; when none is given, `default`, or the strategy of the "
        "running experiment's arm the user is in.",
    )


class SimilarQuery(Filters):
    """Paging and filters for similar anime."""

    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class TitleSimilarQuery(SimilarQuery):
    """A title (typos forgiven) plus paging and filters."""

    title: str = Field(min_length=1, max_length=300, description="An anime title, any language.")


@router.get(
    "/users/{user_id}/recommendations",
    response_model=RecommendationPage,
    responses=NOT_FOUND,
    summary="Recommendations for a known user",
    operation_id="user_recommendations",
)
def user_recommendations(
    user_id: UserId,
    query: Annotated[PageQuery, Query()],
    served: ServedDep,
    users: UsersDep,
    metrics: MetricsDep,
    online: OnlineDep,
) -> Response:
    """Anime a known user has not rated nor dismissed, best first. Unknown ids: use POST
    /v1/recommendations. Inside a running experiment the user's arm picks the strategy unless
    the request names one."""
    served_page = recommend_known_user(
        served,
        users,
        online,
        user_id,
        query.k,
        query.offset,
        query.to_filter(),
        query.strategy,
    )
    page = served_page.page
    metrics.observe_stages(page.strategy, page.timings)
    return _json(
        RecommendationPage.of(
            page,
            query.k,
            served_page.engine.version,
            served_page.current.degraded,
            served_page.assignment,
        )
    )


@router.get(
    "/users/{user_id}",
    response_model=UserProfile,
    responses={**NOT_FOUND, **AUTH_ERRORS},
    summary="A known user's ratings and genre profile",
    dependencies=[HistoryAccess],
    operation_id="user_profile",
)
def user_profile(user_id: UserId, served: ServedDep, users: UsersDep) -> UserProfile:
    """What a user rated (best first) and the share of each genre in it (current ratings).
    A rating history is private when an API key is configured (`OTAKU_PRIVATE_HISTORY`)."""
    engine = served.engine
    current = users.current(engine, user_id)
    profile = current.profile
    shares = {genre: round(share, 4) for genre, share in engine.genre_shares(profile).items()}
    return UserProfile(
        user_id=user_id,
        ratings=[
            RatedAnime(anime=AnimeSummary.of(info), rating=r)
            for info, r in engine.history_of(profile)
        ],
        genre_profile=dict(sorted(shares.items(), key=lambda pair: -pair[1])),
        mean_rating=round(engine.mean_rating(profile), 3),
        degraded=current.degraded,
    )


@router.post(
    "/users",
    response_model=UserCreated,
    status_code=201,
    responses={
        201: {
            "description": "The user was created.",
            "links": _links(
                RateAnime=("put_rating", _USER_FROM_BODY),
                UserProfile=("user_profile", _USER_FROM_BODY),
                UserRecommendations=("user_recommendations", _USER_FROM_BODY),
            ),
        },
        409: {"model": Problem, "description": "That id is taken (or no id is left above it)."},
        **AUTH_ERRORS,
    },
    operation_id="create_user",
    summary="Create a user",
    dependencies=[WriteAccess],
)
def create_user(body: NewUserIn, users: UsersDep) -> UserCreated:
    """A new user (the next free id unless one is given); then rate anime for them."""
    return UserCreated(user_id=users.create(body.user_id))


@router.put(
    "/users/{user_id}/ratings/{anime_id}",
    response_model=RatingStored,
    responses={
        200: {
            "description": "The rating was stored.",
            "links": _links(
                DeleteRating=("delete_rating", _RATING_FROM_BODY),
                RateAgain=("put_rating", _RATING_FROM_BODY),
                UserRecommendations=("user_recommendations", _USER_FROM_BODY),
                UserProfile=("user_profile", _USER_FROM_BODY),
            ),
        },
        **NOT_FOUND,
        **AUTH_ERRORS,
    },
    operation_id="put_rating",
    summary="Add or change a rating",
    dependencies=[WriteAccess],
)
def put_rating(
    user_id: UserId, anime_id: AnimeId, body: RatingValue, served: ServedDep, users: UsersDep
) -> RatingStored:
    """Store a 1..10 rating; the user's recommendations reflect it at once (fold-in)."""
    created = users.rate(served.engine, user_id, anime_id, body.rating)
    return RatingStored(user_id=user_id, anime_id=anime_id, rating=body.rating, created=created)


@router.delete(
    "/users/{user_id}/ratings/{anime_id}",
    status_code=204,
    responses={**NOT_FOUND, **AUTH_ERRORS},
    operation_id="delete_rating",
    summary="Delete a rating",
    dependencies=[WriteAccess],
)
def delete_rating(
    user_id: UserId, anime_id: AnimeId, served: ServedDep, users: UsersDep
) -> Response:
    """Remove a rating; the user's recommendations reflect it at once."""
    users.unrate(served.engine, user_id, anime_id)
    return Response(status_code=204)


@router.post(
    "/recommendations",
    response_model=RecommendationPage,
    summary="Recommendations for a new user",
)
def new_user_recommendations(
    request: NewUserRequest, served: ServedDep, metrics: MetricsDep, online: OnlineDep
) -> Response:
    """For a user the model has not seen: nothing (popular picks), genre weights
    (`{"Action": 1, "Romance": 0.4}`) and/or a few ratings, folded in without retraining.
    (No id: outside any experiment; a user created with POST /v1/users is a known user.)"""
    started = time.perf_counter()
    user = NewUser(
        ratings={rating.anime_id: rating.rating for rating in request.ratings},
        preferences=request.preferences,
    )
    page = served.engine.recommend_for_new_user(
        user, request.k, request.offset, request.filters.to_filter(), request.strategy
    )
    metrics.observe_stages(page.strategy, page.timings)
    online.shown(page, None, None, served.engine.version, started)
    return _json(RecommendationPage.of(page, request.k, served.engine.version))


@router.get("/anime/search", response_model=SearchResults, summary="Find anime by name")
def search_anime(
    served: ServedDep,
    q: Annotated[str, Query(min_length=1, max_length=300, description="Part of a name.")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Response:
    """Anime whose romaji, English or Japanese name contains `q`, then the closest by
    Jaro-Winkler (typos forgiven)."""
    found = served.engine.search(q, limit)
    return _json(
        SearchResults(
            query=q,
            results=[
                SearchResult(
                    anime=AnimeSummary.of(info),
                    matched_name=match.matched_name,
                    similarity=round(match.similarity, 4),
                    exact=match.exact,
                )
                for info, match in found
            ],
        )
    )


@router.get(
    "/anime/similar",
    response_model=SimilarPage,
    responses=NOT_FOUND,
    summary="Anime similar to a title",
)
def similar_by_title(
    query: Annotated[TitleSimilarQuery, Query()], served: ServedDep, metrics: MetricsDep
) -> Response:
    """Exact title (case/accent-insensitive, any language), else the best Jaro-Winkler match
    above 0.9; no match → 404 with "did you mean" suggestions."""
    engine = served.engine
    match = engine.find_title(query.title)
    anime_id = engine.anime_id_of(match.item)
    page = engine.similar(anime_id, query.k, query.offset, query.to_filter())
    metrics.observe_stages("similar", page.timings)
    base = RecommendationPage.of(page, query.k, engine.version)
    query_anime = AnimeSummary.of(engine.anime(anime_id))
    return _json(SimilarPage.around(base, query_anime, match.matched_name, match.exact))


@router.get(
    "/anime/{anime_id}", response_model=AnimeDetail, responses=NOT_FOUND, summary="One anime"
)
def anime_detail(anime_id: AnimeId, served: ServedDep) -> Response:
    """Everything the catalog knows about one anime."""
    return _json(AnimeDetail.of(served.engine.anime(anime_id)))


@router.get(
    "/anime/{anime_id}/similar",
    response_model=SimilarPage,
    responses=NOT_FOUND,
    summary="Anime similar to an anime",
)
def similar_anime(
    anime_id: AnimeId,
    query: Annotated[SimilarQuery, Query()],
    served: ServedDep,
    metrics: MetricsDep,
) -> Response:
    """The most cosine-similar anime (LightFM item embedding ⊕ synopsis embedding)."""
    engine = served.engine
    page = engine.similar(anime_id, query.k, query.offset, query.to_filter())
    metrics.observe_stages("similar", page.timings)
    base = RecommendationPage.of(page, query.k, engine.version)
    return _json(SimilarPage.around(base, AnimeSummary.of(engine.anime(anime_id))))


@router.get("/genres", response_model=GenreList, summary="Genres the model knows")
def genres(served: ServedDep) -> GenreList:
    """Every genre usable in preferences and filters."""
    return GenreList(genres=served.engine.genres)


@router.get("/model", response_model=ModelInfo, summary="The model being served")
def model_info(served: ServedDep) -> ModelInfo:
    """Version, origin, training data and validation figures of the served model."""
    metadata = served.engine.metadata
    metrics = {
        key: float(value)
        for key, value in metadata.get("metrics", {}).items()
        if isinstance(value, int | float)
    }
    return ModelInfo(
        version=served.engine.version,
        strategies=[
            StrategyInfo(name=name, description=description)
            for name, description in served.engine.strategy_descriptions().items()
        ],
        registry_version=served.registry_version,
        source=served.source,
        trained_at=metadata.get("created_at"),
        data=metadata.get("data"),
        simulated=metadata.get("simulated"),
        counts={k: int(v) for k, v in metadata.get("counts", {}).items()},
        metrics=metrics,
        warmed_users=served.warm_up.warmed,
        warm_up_done=served.warm_up.done,
    )


@admin_router.post(
    "/reload",
    response_model=Reloaded,
    responses={401: {"model": Problem}, 403: {"model": Problem}, 503: {"model": Problem}},
    summary="Serve the registry's current champion now",
)
def reload_champion(request: Request, api_key: AdminKey) -> Reloaded:
    """Load the `champion` and swap it in atomically (requests in flight finish on the old
    model). Needs OTAKU_API_KEY to be configured and sent as X-API-Key."""
    before, after = request.app.state.watcher.reload(force=True)
    return Reloaded(previous_registry_version=before, registry_version=after)
