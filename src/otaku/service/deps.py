"""Dependencies the routes declare (FastAPI ``Annotated`` aliases)."""

from typing import Annotated

from fastapi import Depends, Request

from otaku.config import Settings
from otaku.service.metrics import ServiceMetrics
from otaku.service.model import ModelHolder, ServedModel


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


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ServedDep = Annotated[ServedModel, Depends(get_served)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
