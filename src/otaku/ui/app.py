"""The web UI: server-rendered pages that talk only to the REST API.

Plain HTML forms (no JavaScript needed), so every page works in any browser, is bookmarkable,
and is fast to load and to test. ``otaku ui`` serves it; ``OTAKU_UI_API_URL`` says where the
API is.
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from otaku.config import Settings, get_settings
from otaku.ui.client import ApiClient, ApiError, ApiUnavailableError
from otaku.ui.forms import NewUserForm, genre_bars, parse_new_user_form

PAGE_SIZES = (10, 20, 50)


def create_ui(settings: Settings | None = None, client: ApiClient | None = None) -> FastAPI:
    """The UI application; ``client`` defaults to one for ``settings.resolved_ui_api_url``."""
    settings = settings or get_settings()
    api = client or ApiClient(settings.resolved_ui_api_url, api_key=settings.api_key)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        api.close()

    ui = FastAPI(title="otaku web UI", lifespan=lifespan, docs_url=None, redoc_url=None)
    ui.state.api = api
    ui.state.templates = Jinja2Templates(directory=str(files("otaku.ui") / "templates"))
    ui.mount("/static", StaticFiles(directory=str(files("otaku.ui") / "static")), name="static")
    ui.add_exception_handler(ApiUnavailableError, _api_down)
    ui.include_router(router)
    return ui


def _api(request: Request) -> ApiClient:
    api: ApiClient = request.app.state.api
    return api


Api = Annotated[ApiClient, Depends(_api)]


def _strategies(api: ApiClient) -> list[str]:
    """The served strategies' names, from the API's strategy registry (default first)."""
    return [strategy["name"] for strategy in api.model().get("strategies", [])] or ["default"]


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("api_url", _api(request).base_url)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status)


async def _api_down(request: Request, error: Exception) -> HTMLResponse:
    reason = error.reason if isinstance(error, ApiUnavailableError) else str(error)
    return _page(request, "unavailable.html", status=503, reason=reason)


router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz(api: Api) -> dict[str, str]:
    """The UI process is up (it says nothing of the API)."""
    return {"status": "ok", "api": api.base_url}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, api: Api) -> HTMLResponse:
    """Three ways in: a known user, a new user, similar anime."""
    return _page(request, "home.html", model=api.model())


@router.get("/users", response_class=HTMLResponse, response_model=None)
def find_user(
    request: Request, api: Api, user_id: Annotated[str, Query()] = ""
) -> HTMLResponse | RedirectResponse:
    """The home page's user-id form."""
    if not user_id.strip().isdigit():
        error = f"A user id is a whole number, not {user_id!r}."
        return _page(request, "home.html", status=422, model=api.model(), error=error)
    return RedirectResponse(f"/users/{int(user_id)}", status_code=303)


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_page(
    request: Request,
    api: Api,
    user_id: int,
    strategy: Annotated[str, Query()] = "default",
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    saved: Annotated[int | None, Query()] = None,
    dismissed: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    """A known user: ratings, genre profile chart, recommendations to rate."""
    strategies = _strategies(api)
    strategy = strategy if strategy in strategies else strategies[0]
    try:
        profile = api.user(user_id)
        recommendations = api.user_recommendations(user_id, k=k, strategy=strategy)
    except ApiError as error:
        return _page(
            request, "user_missing.html", status=error.status, user_id=user_id, error=str(error)
        )
    names = {row["anime"]["anime_id"]: row["anime"]["name"] for row in profile["ratings"]}
    return _page(
        request,
        "user.html",
        profile=profile,
        recommendations=recommendations,
        bars=genre_bars(profile["genre_profile"]),
        strategy=strategy,
        strategies=strategies,
        k=k,
        page_sizes=PAGE_SIZES,
        saved=names.get(saved) if saved is not None else None,
        dismissed=dismissed,
    )


@router.post("/users/{user_id}/ratings", response_class=HTMLResponse, response_model=None)
def rate(
    request: Request,
    api: Api,
    user_id: int,
    anime_id: Annotated[int, Form()],
    rating: Annotated[int, Form(ge=1, le=10)],
) -> HTMLResponse | RedirectResponse:
    """Store a rating through the API, then show the user's updated page."""
    try:
        api.rate(user_id, anime_id, rating)
    except ApiError as error:
        message = f"The rating was not saved: {error}"
        return _page(
            request, "user_missing.html", status=error.status, user_id=user_id, error=message
        )
    return RedirectResponse(f"/users/{user_id}?saved={anime_id}", status_code=303)


@router.post("/users/{user_id}/not-interested", response_class=HTMLResponse, response_model=None)
def not_interested(
    request: Request, api: Api, user_id: int, anime_id: Annotated[int, Form()]
) -> HTMLResponse | RedirectResponse:
    """Mark an anime "not interested" through the API, then show the updated page."""
    try:
        api.not_interested(user_id, anime_id)
    except ApiError as error:
        message = f"That was not saved: {error}"
        return _page(
            request, "user_missing.html", status=error.status, user_id=user_id, error=message
        )
    return RedirectResponse(f"/users/{user_id}?dismissed={anime_id}", status_code=303)


@router.get("/new", response_class=HTMLResponse)
def new_user(request: Request, api: Api) -> HTMLResponse:
    """Genre weights and/or a few rated titles → recommendations."""
    genres, strategies = api.genres(), _strategies(api)
    form = parse_new_user_form(request.query_params, genres, strategies)
    context: dict[str, Any] = {"form": form, "genres": genres, "strategies": strategies}
    if form.submitted and not form.errors:
        body, resolved, errors = _resolve_ratings(api, form)
        context["resolved"] = resolved
        form.errors.extend(errors)
        if not errors:
            try:
                context["recommendations"] = api.new_user_recommendations(body)
            except ApiError as error:
                form.errors.append(str(error))
    return _page(request, "new_user.html", status=422 if form.errors else 200, **context)


@router.post("/new/save", response_class=HTMLResponse, response_model=None)
async def save_new_user(request: Request, api: Api) -> HTMLResponse | RedirectResponse:
    """Create a user from the rated titles and open their page."""
    submitted = await request.form()
    return await run_in_threadpool(_save_new_user, request, api, submitted)


def _save_new_user(
    request: Request, api: ApiClient, submitted: Mapping[str, Any]
) -> HTMLResponse | RedirectResponse:
    genres, strategies = api.genres(), _strategies(api)
    form = parse_new_user_form(submitted, genres, strategies)
    body, resolved, errors = _resolve_ratings(api, form)
    if form.errors or errors or not body.get("ratings"):
        form.errors.extend(errors or ["Rate at least one anime to save a profile."])
        return _page(
            request,
            "new_user.html",
            status=422,
            form=form,
            genres=genres,
            strategies=strategies,
            resolved=resolved,
        )
    try:
        user_id = api.create_user()
        for rated in body["ratings"]:
            api.rate(user_id, rated["anime_id"], rated["rating"])
    except ApiError as error:
        form.errors.append(f"The profile was not saved: {error}")
        return _page(
            request,
            "new_user.html",
            status=error.status,
            form=form,
            genres=genres,
            strategies=strategies,
            resolved=resolved,
        )
    return RedirectResponse(f"/users/{user_id}", status_code=303)


@router.get("/similar", response_class=HTMLResponse)
def similar(
    request: Request,
    api: Api,
    title: Annotated[str, Query(max_length=300)] = "",
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> HTMLResponse:
    """Anime similar to a title; "did you mean" links when nothing is close."""
    if not title.strip():
        return _page(request, "similar.html", title="")
    try:
        found = api.similar_by_title(title.strip(), k=k)
    except ApiError as error:
        return _page(
            request,
            "similar.html",
            status=error.status,
            title=title,
            error=str(error),
            suggestions=error.suggestions,
        )
    return _page(request, "similar.html", title=title, result=found)


@router.get("/anime/{anime_id}", response_class=HTMLResponse)
def anime(request: Request, api: Api, anime_id: int) -> HTMLResponse:
    """One anime with its synopsis and the anime most similar to it."""
    try:
        detail = api.anime(anime_id)
        related = api.similar(anime_id)
    except ApiError as error:
        return _page(request, "similar.html", status=error.status, title="", error=str(error))
    return _page(request, "anime.html", anime=detail, result=related)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """No icon (and no 404 in the logs)."""
    return Response(status_code=204)


def _resolve_ratings(
    api: ApiClient, form: NewUserForm
) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any], int]], list[str]]:
    """The API body for a new user; titles become anime by the API's own title search."""
    resolved: list[tuple[str, dict[str, Any], int]] = []
    errors: list[str] = []
    for row, (title, rating) in enumerate(form.rated_titles, start=1):
        matches = api.search(title, limit=1)
        if not matches:
            errors.append(f"Rated anime {row}: no anime is called anything like {title!r}.")
            continue
        resolved.append((title, matches[0]["anime"], rating))
    body: dict[str, Any] = {"k": form.k, "strategy": form.strategy}
    if form.preferences:
        body["preferences"] = form.preferences
    ratings = {anime["anime_id"]: rating for _, anime, rating in resolved}
    if ratings:
        body["ratings"] = [{"anime_id": key, "rating": value} for key, value in ratings.items()]
    return body, resolved, errors
