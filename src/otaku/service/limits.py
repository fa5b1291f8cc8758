"""Bounded requests: a body larger than the limit is refused with 413 before it is read (by
its ``Content-Length``) or as soon as it grows past the limit (chunked uploads)."""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otaku.service.errors import problem


def too_large(max_bytes: int) -> str:
    """What a client that sent too much is told."""
    return f"the request body is larger than {max_bytes} bytes (OTAKU_MAX_BODY_BYTES)"


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413 (plain ASGI, no per-request copy)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request on, counting the bytes of its body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            detail = too_large(self.max_bytes) if declared.isdigit() else "bad Content-Length"
            status = 413 if declared.isdigit() else 400
            response = problem(status, detail, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, too_large(self.max_bytes))
            return message

        await self.app(scope, counting_receive, send)
