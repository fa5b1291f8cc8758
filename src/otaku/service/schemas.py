"""Request and response schemas of the REST API (inputs and outputs kept separate)."""

from collections.abc import Iterable
from functools import lru_cache
from itertools import islice
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
)

from otaku.columns import ID_MAX, ID_MIN, RATING_MAX, RATING_MIN
from otaku.experiments.definition import Assignment
from otaku.pipeline.catalog import AnimeInfo
from otaku.pipeline.filters import ItemFilter
from otaku.pipeline.pages import DEFAULT_K, MAX_K, MAX_OFFSET, Page, Recommended
from otaku.pipeline.strategies import STRATEGY_TYPES

SUMMARY_CACHE_SIZE = 20_000  # anime summaries kept for pages (the catalog has ~17.5k)


def _known_strategy(name: str) -> str:
    if name not in STRATEGY_TYPES:
        raise ValueError(f"must be one of {list(STRATEGY_TYPES)}")
    return name


# A name in the strategy registry (the OpenAPI document lists them as an enum).
StrategyName = Annotated[
    str, Field(max_length=64, description="A strategy name"), AfterValidator(_known_strategy)
]
# Writes take exactly the type they document: `true`, "7" and 7.0 are not the rating 7.
Rating = Annotated[StrictInt, Field(ge=RATING_MIN, le=RATING_MAX, description="1..10")]
GenreWeight = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
StrictId = Annotated[StrictInt, Field(ge=ID_MIN, le=ID_MAX)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
MAX_NAMES = 50  # genres or types in one filter
MAX_PREFERENCES = 100  # genre weights of one new user


class Strict(BaseModel):
    """Inputs reject unknown fields, so a typo is an error and not silently ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StrictBody(BaseModel):
    """JSON bodies: unknown fields refused, and no coercion (a string is not a number)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class AnimeSummary(BaseModel):
    """An anime as lists show it."""

    anime_id: int
    name: str
    english_name: str | None = None
    type: str | None = None
    episodes: int | None = None
    mal_score: float | None = None
    members: int | None = None
    start_year: int | None = None
    genres: list[str]

    @classmethod
    def of(cls, info: AnimeInfo) -> "AnimeSummary":
        """From the engine's description (already typed: no validation on the hot path)."""
        return cls.model_construct(
            anime_id=info.anime_id,
            name=info.name,
            english_name=info.english_name,
            type=info.type,
            episodes=info.episodes,
            mal_score=info.mal_score,
            members=info.members,
            start_year=info.start_year,
            genres=list(info.genres),
        )


class AnimeDetail(AnimeSummary):
    """An anime with everything the catalog knows."""

    japanese_name: str | None = None
    age_rating: str | None = None
    synopsis: str | None = None

    @classmethod
    def of(cls, info: AnimeInfo) -> "AnimeDetail":
        """From the engine's description."""
        return cls.model_construct(
            **dict(AnimeSummary.of(info)),
            japanese_name=info.japanese_name,
            age_rating=info.age_rating,
            synopsis=info.synopsis,
        )


class RecommendationItem(BaseModel):
    """One recommended anime."""

    rank: int = Field(description="1-based position in the whole list (offset included).")
    anime: AnimeSummary
    predicted_rating: float = Field(description="The rating model's prediction for this user.")
    score: float = Field(description="The strategy's ranking score (higher ranks first).")
    explanation: str


class RecommendationPage(BaseModel):
    """A page of recommendations."""

    strategy: StrategyName
    model_version: str
    offset: int
    k: int
    items: list[RecommendationItem]
    degraded: str | None = Field(
        default=None,
        description="Set when the answer could not use the user's current ratings (the "
        "database is unavailable): says what it was built from instead.",
    )
    experiment: str | None = Field(
        default=None, description="The running experiment that chose the strategy, if any."
    )
    arm: str | None = Field(default=None, description="The experiment's arm this user is in.")

    @classmethod
    def of(
        cls,
        page: Page,
        k: int,
        model_version: str,
        degraded: str | None = None,
        assignment: Assignment | None = None,
    ) -> "RecommendationPage":
        """From an engine page."""
        return cls.model_construct(
            strategy=page.strategy,
            model_version=model_version,
            offset=page.offset,
            k=k,
            items=[_item(page.offset + i + 1, rec) for i, rec in enumerate(page.items)],
            degraded=degraded,
            experiment=assignment.experiment if assignment else None,
            arm=assignment.arm if assignment else None,
        )


@lru_cache(maxsize=SUMMARY_CACHE_SIZE)
def _summary(info: AnimeInfo) -> "AnimeSummary":
    # shared by every page that shows this anime: responses only read it
    return AnimeSummary.of(info)


def prepare_summaries(infos: Iterable[AnimeInfo]) -> int:
    """Build the page summary of each given anime ahead of the requests that show it (at most
    as many as the cache keeps); returns how many are ready."""
    ready = 0
    for info in islice(infos, SUMMARY_CACHE_SIZE):
        _summary(info)
        ready += 1
    return ready


def _item(rank: int, recommended: Recommended) -> RecommendationItem:
    return RecommendationItem.model_construct(
        rank=rank,
        anime=_summary(recommended.anime),
        predicted_rating=round(recommended.predicted_rating, 3),
        score=round(recommended.score, 6),
        explanation=recommended.explanation,
    )


class SimilarPage(RecommendationPage):
    """Anime similar to one anime."""

    @classmethod
    def around(
        cls,
        base: RecommendationPage,
        query: AnimeSummary,
        matched_name: str | None = None,
        exact_match: bool | None = None,
    ) -> "SimilarPage":
        """A page of similar anime around its query anime."""
        return cls.model_construct(
            **dict(base), query=query, matched_name=matched_name, exact_match=exact_match
        )

    query: AnimeSummary
    matched_name: str | None = Field(
        default=None, description="The name the title matched, when looked up by title."
    )
    exact_match: bool | None = None


class Filters(Strict):
    """Which anime may be recommended."""

    include_genres: list[Name] = Field(
        default_factory=list, max_length=MAX_NAMES, description="At least one of these."
    )
    exclude_genres: list[Name] = Field(
        default_factory=list, max_length=MAX_NAMES, description="None of these."
    )
    types: list[Name] = Field(
        default_factory=list, max_length=MAX_NAMES, description="TV, Movie, OVA, ONA, ..."
    )
    min_score: float | None = Field(default=None, ge=0, le=10, description="Minimum MAL score.")
    year_from: int | None = Field(default=None, ge=1900, le=2100)
    year_to: int | None = Field(default=None, ge=1900, le=2100)
    include_adult: bool = Field(default=False, description="Allow Hentai / 'Rx - Hentai'.")

    def to_filter(self) -> ItemFilter:
        """The engine's filter."""
        return ItemFilter(
            include_genres=tuple(self.include_genres),
            exclude_genres=tuple(self.exclude_genres),
            types=tuple(self.types),
            min_score=self.min_score,
            year_from=self.year_from,
            year_to=self.year_to,
            include_adult=self.include_adult,
        )


class BodyFilters(Filters):
    """Filters in a JSON body (strict types)."""

    model_config = ConfigDict(strict=True)  # the rest is inherited from Filters


class RatingIn(StrictBody):
    """One rating a new user gives."""

    anime_id: StrictId
    rating: Rating


class NewUserRequest(StrictBody):
    """A new user: genre weights and/or a few ratings; both may be empty (cold start)."""

    preferences: dict[Name, GenreWeight] = Field(
        default_factory=dict, max_length=MAX_PREFERENCES, description="Genre → weight in [0, 1]."
    )
    ratings: list[RatingIn] = Field(default_factory=list, max_length=1000)
    k: StrictInt = Field(default=DEFAULT_K, ge=1, le=MAX_K)
    offset: StrictInt = Field(default=0, ge=0, le=MAX_OFFSET)
    strategy: StrategyName = "default"
    filters: BodyFilters = Field(default_factory=BodyFilters)

    @field_validator("ratings")
    @classmethod
    def _one_rating_per_anime(cls, ratings: list[RatingIn]) -> list[RatingIn]:
        seen: set[int] = set()
        for rating in ratings:
            if rating.anime_id in seen:
                raise ValueError(f"anime {rating.anime_id} is rated more than once")
            seen.add(rating.anime_id)
        return ratings

    model_config = ConfigDict(  # merged with StrictBody's
        json_schema_extra={
            "examples": [
                {"preferences": {"Action": 1, "Romance": 0.4}, "k": 10},
                {"ratings": [{"anime_id": 1, "rating": 10}, {"anime_id": 5114, "rating": 9}]},
                {},
            ]
        },
    )


class RatedAnime(BaseModel):
    """An anime a user rated."""

    anime: AnimeSummary
    rating: int


class UserProfile(BaseModel):
    """A known user: what they rated and their genre profile."""

    user_id: int
    ratings: list[RatedAnime]
    genre_profile: dict[str, float] = Field(description="Share of each genre in what they rated.")
    mean_rating: float
    degraded: str | None = Field(
        default=None, description="Set when the database is unavailable (see recommendations)."
    )


class SearchResult(BaseModel):
    """An anime found by name."""

    anime: AnimeSummary
    matched_name: str
    similarity: float
    exact: bool


class SearchResults(BaseModel):
    """Search results, best first."""

    query: str
    results: list[SearchResult]


class GenreList(BaseModel):
    """Genres the model knows."""

    genres: list[str]


class StrategyInfo(BaseModel):
    """A strategy the service can rank with."""

    name: str
    description: str


class ModelInfo(BaseModel):
    """The model being served."""

    version: str
    strategies: list[StrategyInfo] = Field(description="Strategies to choose from, default first.")
    registry_version: str | None
    source: str
    trained_at: str | None
    data: str | None
    simulated: bool | None
    counts: dict[str, int]
    metrics: dict[str, float]
    warmed_users: int = Field(description="Known users whose first page is precomputed.")
    warm_up_done: bool


class Problem(BaseModel):
    """An error answer."""

    detail: str
    suggestions: list[str] | None = None
    new_user_endpoint: str | None = None
    request_id: str | None = None


class NewUserIn(StrictBody):
    """A user to create; without an id the service picks the next free one."""

    user_id: StrictId | None = None


class UserCreated(BaseModel):
    """The created user."""

    user_id: int


class RatingValue(StrictBody):
    """A rating to set."""

    rating: Rating


class RatingStored(BaseModel):
    """A stored rating."""

    user_id: int
    anime_id: int
    rating: int
    created: bool = Field(description="True when the user had not rated this anime before.")


class Reloaded(BaseModel):
    """The champion before and after a reload."""

    previous_registry_version: str | None
    registry_version: str | None
