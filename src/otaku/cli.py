"""The `otaku` command line: ``otaku.cli:app`` (also ``python -m otaku.cli``). The commands
live in :mod:`otaku.commands`; importing those modules registers them."""

from otaku.commands import data, experiments, jobs, serving
from otaku.commands.common import app

__all__ = ["app", "data", "experiments", "jobs", "serving"]

if __name__ == "__main__":  # pragma: no cover
    app()
