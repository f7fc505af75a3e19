"""HTTP API over a search index (FastAPI): search by text, by an uploaded file, by embedding
arithmetic; item metadata; media served by item id only; health and stats.

Security model: every ``/api`` route needs the bearer token (``polymodal serve`` makes one up
when none is given); a request whose ``Host`` is not one of the server's names is refused (DNS
rebinding), and so is a cross-site request (``Origin`` or ``Sec-Fetch-Site``) that is not a
simple read. Media is served only for items that were embedded, from inside the indexed folder,
as the file that was indexed (see ``server.media``). Uploads are streamed and cut at the size
limit; they are decoded in a worker process with a time and memory limit (``server.decode``).

Every user mistake is a 4xx JSON ``{"detail": ...}``: unsupported or empty upload (415/400),
oversize upload (413), malformed JSON or an out-of-range id (422), unknown item or modality
(404/400), missing or wrong bearer token (401), a cross-site request (403), a request running
past the time limit (503).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import secrets
from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from . import item_routes, search_routes
from .decode import DecodePool
from .limits import BodyLimit, same_origin
from .service import SearchService, Served, served

STATIC = Path(__file__).parent / "static"
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
_bearer = HTTPBearer(auto_error=False)


def authorised(cred: HTTPAuthorizationCredentials | None = Depends(_bearer), s: Served = Depends(served)) -> None:
    """Every /api route's dependency: the bearer token, compared in constant time (none set: open)."""
    if s.token is not None and (cred is None or not hmac.compare_digest(cred.credentials.encode(), s.token.encode())):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def access(host: str, token: str | None, no_token: bool, allowed_hosts: list[str] | None) -> tuple[str | None, list[str]]:
    """The bearer token and the ``Host`` names a server bound to ``host`` uses: a given token, none
    (``no_token``, loopback hosts only: anyone who can reach a public bind could read the index), or
    a new random one; the loopback names on a loopback bind, else ``host``, unless ``allowed_hosts``."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if no_token and token:
        raise ValueError("give --token or --no-token, not both")
    if no_token and not loopback:
        raise ValueError(f"refusing to serve {host} without a token: anyone who can reach it could read the index; "
                         "drop --no-token (a random token is made) or bind to 127.0.0.1")
    token = None if no_token else token or secrets.token_urlsafe(24)
    return token, allowed_hosts or (LOOPBACK_NAMES if loopback else [host])


def create_app(index_dir: str | Path, model_dir: str | Path | None = None, token: str | None = None,
               max_upload_mb: float = 25.0, timeout_s: float = 30.0, allowed_hosts: list[str] | None = None,
               decode_memory_mb: float = 1024, trust_torchscript: bool = False, device: str = "cpu",
               backend: str = "torch", qa_dir: str | Path | None = None) -> FastAPI:
    """The app. ``token`` None means no authentication (the CLI allows that on loopback only);
    ``device`` is where the model runs (``auto``, ``cpu``, ``cuda``) and ``backend`` what runs it
    (``torch``, ``onnxruntime``, ``openvino``); ``qa_dir`` a document QA model for ``/api/ask``;
    ``allowed_hosts`` are the ``Host`` names accepted (default: the loopback names)."""
    service = SearchService(index_dir, model_dir, trust_torchscript, device, backend, qa_dir)
    decoder = DecodePool(service.embedder.processor, service.embedder.modalities, decode_memory_mb)
    decoder.warm_up()
    app = FastAPI(title="polymodal search", docs_url=None, redoc_url=None)
    app.state.served = Served(service, decoder, token, max_upload_mb, timeout_s)
    app.router.on_shutdown.append(decoder.close)
    _guard(app, timeout_s)
    # Outermost first: Host check, then the body limit (before anything reads the body).
    app.add_middleware(BodyLimit, max_bytes=app.state.served.max_upload + 2**16)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_NAMES)
    # The page itself holds no data, so it is served without the token; every /api route needs it.
    api = APIRouter(prefix="/api", dependencies=[Depends(authorised)])
    api.include_router(search_routes.router)
    api.include_router(item_routes.router)
    app.include_router(api)
    _pages(app)
    return app


def _guard(app: FastAPI, timeout_s: float) -> None:
    """Refuse cross-site requests; answer 503 to a request past ``timeout_s``."""

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if not same_origin(request):
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        try:
            return await asyncio.wait_for(call_next(request), timeout_s)
        except asyncio.TimeoutError:
            return JSONResponse({"detail": f"the request took longer than {timeout_s:g} s"}, status_code=503)
        except RuntimeError as e:
            # Starlette's call_next says "No response returned." when the request's task was cancelled
            # before the route answered (seen while a replacement decode worker was still starting,
            # under load): a retryable 503, not a 500. What cancels it is not yet understood.
            if str(e) != "No response returned.":
                raise
            logging.getLogger("polymodal.server").warning("%s %s: cancelled before it answered", request.method,
                                                          request.url.path)
            return JSONResponse({"detail": "the request was cancelled before it completed; retry"}, status_code=503)


def _pages(app: FastAPI) -> None:
    """The web UI and the OpenAPI docs, with Swagger UI's own files from the installed package (no CDN)."""
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="polymodal search API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    @app.get("/", include_in_schema=False)
    def ui():
        return FileResponse(STATIC / "index.html", media_type="text/html")
