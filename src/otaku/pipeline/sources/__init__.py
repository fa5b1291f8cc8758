"""Candidate sources as plug-ins (see :mod:`otaku.pipeline.sources.base`)."""

from otaku.pipeline.sources import builtin as _builtin  # noqa: F401  (registers the kinds)
from otaku.pipeline.sources.base import (
    SOURCE_KINDS,
    CandidateSource,
    FitInputs,
    SourceSpec,
    UserContext,
    create_source,
    known_context,
    register_source,
    vectors_for,
)

__all__ = [
    "SOURCE_KINDS",
    "CandidateSource",
    "FitInputs",
    "SourceSpec",
    "UserContext",
    "create_source",
    "known_context",
    "register_source",
    "vectors_for",
]
