"""Dependencies the routes declare (FastAPI ``Annotated`` aliases)."""

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from otaku.config import Settings
from otaku.service.metrics import ServiceMetrics
from otaku.service.model import ModelHolder, ServedModel
from otaku.service.users import UserDirectory


def get_settings_dep(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_holder(request: Request) -> ModelHolder:
    """The app's model holder."""
    holder: ModelHolder = request.app.state.holder
    return holder


def get_served(request: Request) -> ServedModel:
    """The model this request is answered with (fixed for the whole request)."""
    return get_holder(request).current()


def get_metrics(request: Request) -> ServiceMetrics:
    """The app's metrics."""
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


def get_users(request: Request) -> UserDirectory:
    """The app's user directory (database-backed when one is configured)."""
    users: UserDirectory = request.app.state.users
    return users


def require_api_key(
    request: Request, api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> None:
    """Writes need the configured API key (when one is configured)."""
    expected = get_settings_dep(request).api_key
    if expected and not (api_key and secrets.compare_digest(api_key, expected)):
        raise HTTPException(status_code=401, detail="a valid X-API-Key header is required")


def require_admin_key(
    request: Request, api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> str:
    """Admin routes need an API key to be configured, and sent."""
    expected = get_settings_dep(request).api_key
    if not expected:
        raise HTTPException(status_code=403, detail="admin routes need OTAKU_API_KEY to be set")
    if not (api_key and secrets.compare_digest(api_key, expected)):
        raise HTTPException(status_code=401, detail="a valid X-API-Key header is required")
    return api_key


AdminKey = Annotated[str, Depends(require_admin_key)]
UsersDep = Annotated[UserDirectory, Depends(get_users)]
WriteAccess = Depends(require_api_key)
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ServedDep = Annotated[ServedModel, Depends(get_served)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
