"""The OpenAPI document with the served model's vocabularies: genres, anime types and
strategies are enums (clients and fuzzers see what is valid), regenerated when another model
is served; and integer bounds written as integers."""

import copy
import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from otaku.service.model import ModelHolder

GENRE_LISTS = ("include_genres", "exclude_genres")
TYPE_LISTS = ("types",)
GENRE_MAPS = ("preferences", "user_preferences")


def _constrain(
    node: Any, name: str, genres: list[str], types: list[str], strategies: list[str]
) -> None:
    """Give the schema ``node`` of a field or parameter called ``name`` its enum."""
    if name == "strategy" and node.get("type") == "string":
        node["enum"] = list(strategies)
    if name in GENRE_LISTS + TYPE_LISTS and isinstance(node.get("items"), dict):
        node["items"]["enum"] = list(genres if name in GENRE_LISTS else types)
    if name in GENRE_MAPS and node.get("type") == "object":
        node["propertyNames"] = {"enum": list(genres)}


BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def integer_bounds(node: Any) -> None:
    """Write the bounds of integer schemas as integers (pydantic emits ``10.0`` for strict
    integers, which strict clients and code generators read as a float)."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for bound in BOUNDS:
                if isinstance(node.get(bound), float) and node[bound].is_integer():
                    node[bound] = int(node[bound])
        for child in node.values():
            integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            integer_bounds(child)


def add_vocabularies(
    document: dict[str, Any], genres: list[str], types: list[str], strategies: list[str]
) -> None:
    """Put the enums into every schema property and query parameter that takes them."""
    vocabularies = (genres, types, strategies)
    for schema in document.get("components", {}).get("schemas", {}).values():
        for name, field in schema.get("properties", {}).items():
            _constrain(field, name, *vocabularies)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                _constrain(parameter.get("schema", {}), parameter["name"], *vocabularies)


def model_openapi(app: FastAPI, holder: ModelHolder) -> Callable[[], dict[str, Any]]:
    """An ``app.openapi`` that adds the served model's genres and types (cached per model)."""
    lock = threading.Lock()
    cached: dict[str | None, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        served = holder.current_or_none()
        version = served.engine.version if served else None
        with lock:
            if version not in cached:
                app.openapi_schema = None
                document = copy.deepcopy(FastAPI.openapi(app))
                integer_bounds(document)
                if served is not None:
                    engine = served.engine
                    add_vocabularies(
                        document, engine.genres, engine.type_names, list(engine.strategies)
                    )
                cached.clear()
                cached[version] = document
            return cached[version]

    return openapi
