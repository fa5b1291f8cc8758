"""Which sources a model uses, with their quotas: the built-in list, and a TOML file that adds
to it, changes it or turns sources off (``otaku train --sources FILE``)."""

import importlib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from otaku.pipeline.sources.base import SOURCE_KINDS, SourceSpec

DEFAULT_SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("ease", "ease", 100, params={"regularization": 100.0, "min_item_ratings": 10}),
    SourceSpec(
        "ease_liked",
        "ease",
        50,
        params={"regularization": 100.0, "min_item_ratings": 5, "min_rating": 7},
    ),
    SourceSpec("ials", "ials", 50, params={"factors": 64}),
    SourceSpec("lightfm", "lightfm", 50, cold_quota=150),
    SourceSpec("itemknn", "itemknn", 50, params={"neighbours": 100}),
    SourceSpec("text", "text", 30, params={"dimensions": 192}),
    SourceSpec("popular", "popular", 30, cold_quota=150),
)
_KEYS = {"name", "kind", "quota", "cold_quota", "params", "module"}


class SourcesConfigError(ValueError):
    """A sources file that cannot be used (the message names the entry and the field)."""


def _spec(entry: Mapping[str, Any], position: int, base: SourceSpec | None) -> SourceSpec:
    where = f"source #{position + 1}"
    unknown = set(entry) - _KEYS
    if unknown:
        raise SourcesConfigError(
            f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(_KEYS)}"
        )
    if not isinstance(entry.get("name"), str) or not entry["name"]:
        raise SourcesConfigError(f"{where}: 'name' must be a non-empty string")
    where = f"source {entry['name']!r}"
    if "module" in entry:  # a plug-in outside otaku registers its kind when imported
        try:
            importlib.import_module(str(entry["module"]))
        except ImportError as error:
            raise SourcesConfigError(
                f"{where}: cannot import module {entry['module']!r}: {error}"
            ) from None
    kind = entry.get("kind", base.kind if base else None)
    if kind not in SOURCE_KINDS:
        raise SourcesConfigError(
            f"{where}: 'kind' must be one of {sorted(SOURCE_KINDS)}, got {kind!r}"
        )
    values = {}
    for key in ("quota", "cold_quota"):
        value = entry.get(key, getattr(base, key) if base else 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000:
            raise SourcesConfigError(f"{where}: '{key}' must be an integer 0..10000, got {value!r}")
        values[key] = value
    params = entry.get("params", dict(base.params) if base else {})
    if not isinstance(params, Mapping):
        raise SourcesConfigError(f"{where}: 'params' must be a table")
    return SourceSpec(entry["name"], str(kind), values["quota"], values["cold_quota"], dict(params))


def merge_sources(
    entries: list[Mapping[str, Any]], base: tuple[SourceSpec, ...] = DEFAULT_SOURCES
) -> tuple[SourceSpec, ...]:
    """``base`` with each entry applied: a new name is appended, a known name is replaced
    (fields not given are kept), and quota = cold_quota = 0 removes the source."""
    specs = {spec.name: spec for spec in base}
    for position, entry in enumerate(entries):
        name = entry.get("name")
        spec = _spec(entry, position, specs.get(name) if isinstance(name, str) else None)
        specs[spec.name] = spec
    chosen = tuple(spec for spec in specs.values() if spec.quota or spec.cold_quota)
    if not chosen:
        raise SourcesConfigError("every source is turned off: the ranker needs at least one")
    return chosen


def load_sources(path: Path) -> tuple[SourceSpec, ...]:
    """The built-in sources changed by a TOML file of ``[[source]]`` tables."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SourcesConfigError(f"{path}: {error}") from None
    entries = document.get("source", [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise SourcesConfigError(f"{path}: expected [[source]] tables")
    return merge_sources(entries)
