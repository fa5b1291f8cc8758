"""Dependencies the routes declare (FastAPI ``Annotated`` aliases).

They are ``async``: they only read the app's state, and FastAPI runs a plain ``def`` dependency
in its thread pool, one thread hop per dependency per request."""

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from otaku.config import Settings
from otaku.service.metrics import ServiceMetrics
from otaku.service.model import ModelHolder, ServedModel
from otaku.service.online import OnlineExperiments
from otaku.service.security import key_matches
from otaku.service.users import UserDirectory


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


async def get_settings_dep(request: Request) -> Settings:
    """The app's settings."""
    return _settings(request)


async def get_holder(request: Request) -> ModelHolder:
    """The app's model holder."""
    return _holder(request)


async def get_served(request: Request) -> ServedModel:
    """The model this request is answered with (fixed for the whole request)."""
    return _holder(request).current()


async def get_metrics(request: Request) -> ServiceMetrics:
    """The app's metrics."""
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


async def get_users(request: Request) -> UserDirectory:
    """The app's user directory (database-backed when one is configured)."""
    users: UserDirectory = request.app.state.users
    return users


async def get_online(request: Request) -> OnlineExperiments:
    """The app's running experiment and impression log."""
    online: OnlineExperiments = request.app.state.online
    return online


async def require_api_key(
    request: Request, api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> None:
    """Writes need the configured API key (when one is configured)."""
    expected = _settings(request).api_key
    if expected and not key_matches(api_key, expected):
        raise HTTPException(status_code=401, detail="a valid X-API-Key header is required")


async def require_history_access(
    request: Request, api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> None:
    """A user's rating history is private when a key is set (``OTAKU_PRIVATE_HISTORY``)."""
    check_history_access(_settings(request), api_key)


def check_history_access(settings: Settings, api_key: str | None) -> None:
    """Refuse (401) a rating history without the key when histories are private."""
    if settings.api_key and settings.private_history and not key_matches(api_key, settings.api_key):
        raise HTTPException(
            status_code=401,
            detail="a user's rating history needs a valid X-API-Key header (OTAKU_PRIVATE_HISTORY)",
        )


async def require_admin_key(
    request: Request, api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> str:
    """Admin routes need an API key to be configured, and sent."""
    expected = _settings(request).api_key
    if not expected:
        raise HTTPException(status_code=403, detail="admin routes need OTAKU_API_KEY to be set")
    if not key_matches(api_key, expected):
        raise HTTPException(status_code=401, detail="a valid X-API-Key header is required")
    assert api_key is not None
    return api_key


AdminKey = Annotated[str, Depends(require_admin_key)]
UsersDep = Annotated[UserDirectory, Depends(get_users)]
WriteAccess = Depends(require_api_key)
HistoryAccess = Depends(require_history_access)
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ServedDep = Annotated[ServedModel, Depends(get_served)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
OnlineDep = Annotated[OnlineExperiments, Depends(get_online)]
