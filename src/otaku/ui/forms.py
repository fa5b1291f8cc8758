"""Reading the UI's forms into what the API expects, with an error per bad field."""

from collections.abc import Mapping
from dataclasses import dataclass, field

RATED_ROWS = 5
WEIGHT_PREFIX = "w:"


@dataclass
class NewUserForm:
    """What a new user asked for: genre weights and/or a few rated titles."""

    submitted: bool = False
    preferences: dict[str, float] = field(default_factory=dict)
    rated_titles: list[tuple[str, int]] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=lambda: [("", "")] * RATED_ROWS)
    k: int = 10
    strategy: str = "default"
    errors: list[str] = field(default_factory=list)

    def weight(self, genre: str) -> str:
        """The weight shown for ``genre`` (empty when not chosen)."""
        value = self.preferences.get(genre)
        return "" if value is None else f"{value:g}"


def parse_new_user_form(
    values: Mapping[str, object], genres: list[str], strategies: list[str]
) -> NewUserForm:
    """Read ``w:<genre>`` weights (0..1), ``title<i>``/``rating<i>`` rows, ``k`` and
    ``strategy`` (one of ``strategies``, else the first)."""
    form = NewUserForm(submitted=str(values.get("go", "")) == "1")
    known = set(genres)
    for key, raw in values.items():
        if not key.startswith(WEIGHT_PREFIX) or str(raw).strip() == "":
            continue
        genre = key.removeprefix(WEIGHT_PREFIX)
        if genre not in known:
            form.errors.append(f"Genre {genre!r} is not one the model knows.")
            continue
        weight = _number(str(raw))
        if weight is None or not 0 <= weight <= 1:
            form.errors.append(f"Weight of {genre}: expected a number from 0 to 1, got {raw!r}.")
        elif weight > 0:
            form.preferences[genre] = weight
    form.rows = []
    for row in range(1, RATED_ROWS + 1):
        title = str(values.get(f"title{row}", "")).strip()
        rating = str(values.get(f"rating{row}", "")).strip()
        form.rows.append((title, rating))
        if not title:
            continue
        if not rating.isdigit() or not 1 <= int(rating) <= 10:
            form.errors.append(f"Rated anime {row} ({title}): choose a rating from 1 to 10.")
            continue
        form.rated_titles.append((title, int(rating)))
    k = str(values.get("k", "10"))
    form.k = int(k) if k.isdigit() and 1 <= int(k) <= 100 else 10
    strategy = str(values.get("strategy", "default"))
    form.strategy = strategy if strategy in strategies else strategies[0]
    return form


def _number(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def genre_bars(profile: Mapping[str, float], top: int = 12) -> list[tuple[str, float, float]]:
    """The ``top`` genres of a profile as (genre, share, bar width in % of the largest)."""
    ranked = sorted(
        ((genre, share) for genre, share in profile.items() if share > 0),
        key=lambda pair: (-pair[1], pair[0]),
    )[:top]
    largest = ranked[0][1] if ranked else 1.0
    return [(genre, share, 100.0 * share / largest) for genre, share in ranked]
