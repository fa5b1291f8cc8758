"""The web UI's only way to the recommender: the REST API, over HTTP."""

from dataclasses import dataclass
from typing import Any

import httpx


class ApiUnavailableError(Exception):
    """The API could not be reached (refused, timed out, or answered 5xx without a model)."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"the recommender API at {base_url} is not reachable: {reason}")
        self.base_url = base_url
        self.reason = reason


class ApiError(Exception):
    """The API answered with an error the user can act on (4xx)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(_describe(body))
        self.status = status
        self.body = body

    @property
    def suggestions(self) -> list[str]:
        """ "Did you mean" titles the API offered, if any."""
        found = self.body.get("suggestions")
        return [str(title) for title in found] if isinstance(found, list) else []


def _describe(body: dict[str, Any]) -> str:
    detail = body.get("detail", body)
    if isinstance(detail, list):  # FastAPI validation errors: name each field
        return "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', [])[1:]) or 'request'}: "
            f"{error.get('msg', '')}"
            for error in detail
            if isinstance(error, dict)
        )
    return str(detail)


@dataclass
class ApiClient:
    """A thin synchronous client of the otaku REST API."""

    base_url: str
    api_key: str | None = None
    timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, timeout=self.timeout_seconds, headers=headers
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            reason = f"no answer within {self.timeout_seconds:g} s"
            raise ApiUnavailableError(self.base_url, reason) from error
        except httpx.TransportError as error:
            reason = f"cannot connect ({type(error).__name__})"
            raise ApiUnavailableError(self.base_url, reason) from error
        if response.status_code >= 500:
            raise ApiUnavailableError(self.base_url, _body(response).get("detail", "server error"))
        if response.status_code >= 400:
            raise ApiError(response.status_code, _body(response))
        return response.json()

    def model(self) -> dict[str, Any]:
        """The served model's description (``GET /v1/model``)."""
        return dict(self._call("GET", "/v1/model"))

    def genres(self) -> list[str]:
        """The genres the model knows."""
        return list(self._call("GET", "/v1/genres")["genres"])

    def user(self, user_id: int) -> dict[str, Any]:
        """A known user's ratings and genre profile."""
        return dict(self._call("GET", f"/v1/users/{user_id}"))

    def user_recommendations(self, user_id: int, **params: Any) -> dict[str, Any]:
        """A known user's recommendation page."""
        return dict(
            self._call("GET", f"/v1/users/{user_id}/recommendations", params=_query(params))
        )

    def new_user_recommendations(self, body: dict[str, Any]) -> dict[str, Any]:
        """Recommendations for someone the model has never seen."""
        return dict(self._call("POST", "/v1/recommendations", json=body))

    def similar_by_title(self, title: str, k: int = 10) -> dict[str, Any]:
        """Anime similar to a title (typos forgiven)."""
        return dict(self._call("GET", "/v1/anime/similar", params={"title": title, "k": k}))

    def similar(self, anime_id: int, k: int = 10) -> dict[str, Any]:
        """Anime similar to one anime."""
        return dict(self._call("GET", f"/v1/anime/{anime_id}/similar", params={"k": k}))

    def anime(self, anime_id: int) -> dict[str, Any]:
        """One anime with its synopsis."""
        return dict(self._call("GET", f"/v1/anime/{anime_id}"))

    def search(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Anime whose names match ``query``."""
        found = self._call("GET", "/v1/anime/search", params={"q": query, "limit": limit})
        return list(found["results"])

    def create_user(self) -> int:
        """A new user id in the database."""
        return int(self._call("POST", "/v1/users", json={})["user_id"])

    def rate(self, user_id: int, anime_id: int, rating: int) -> dict[str, Any]:
        """Store (or change) one rating."""
        return dict(
            self._call("PUT", f"/v1/users/{user_id}/ratings/{anime_id}", json={"rating": rating})
        )

    def not_interested(self, user_id: int, anime_id: int) -> dict[str, Any]:
        """Never recommend this anime to this user again."""
        body = {"anime_id": anime_id, "kind": "not_interested"}
        return dict(self._call("POST", f"/v1/users/{user_id}/feedback", json=body))


def _query(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value not in (None, "", [])}


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text[:300] or response.reason_phrase}
    return body if isinstance(body, dict) else {"detail": body}
