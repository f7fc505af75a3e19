"""Request guards that run before a route sees the request: the body size limit, enforced while
the body streams in, and the same-origin rule for anything that is not a plain read."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.requests import Request

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def same_origin(request: Request) -> bool:
    """False for a cross-site write: a form POST from another site needs no CORS preflight, so the
    browser's ``Origin`` and ``Sec-Fetch-Site`` headers are what tell it apart."""
    if request.method in SAFE_METHODS:
        return True
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser (curl, httpx), or a same-origin request of an old browser
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413, from its ``Content-Length``
    before any byte is read, or as soon as the streamed body passes the limit (nothing more is
    read, and the app sees the client as gone)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def _too_large(self, send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._too_large(send)
        seen, answered, started = 0, False, False

        async def limited_receive():
            nonlocal seen, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not started:
                    answered = True
                    await self._too_large(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if answered:
                return  # the 413 has been sent; whatever the app answers to the "disconnect" is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
