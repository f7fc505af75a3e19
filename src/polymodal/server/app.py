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
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Union

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, File, HTTPException, Path as PathParam, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, StringConstraints
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..modalities.registry import modality_names
from ..search.detect import UnsupportedFile
from ..search.query import embedder_for
from ..search.store import Store
from .decode import DecodeBusy, DecodeCrashed, DecodePool, DecodeTimeout
from .limits import BodyLimit, same_origin
from .media import SAFE_HEADERS, MediaGone, chunks, container_type, open_item, picture_png, png_bytes, read_all, \
    sensor_picture

STATIC = Path(__file__).parent / "static"
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
MAX_PARTS = 64  # items added or subtracted in one arithmetic query
MAX_PREVIEW_BYTES = 256 * 2**20  # pictures, PDFs and sensor files larger than this are not rendered
ItemId = Annotated[int, Field(ge=1, lt=2**63)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class ArithmeticQuery(BaseModel):
    text: str | None = Field(None, max_length=2000)
    plus: list[Union[ItemId, Text]] = Field(default_factory=list, max_length=MAX_PARTS,
                                            description="item ids or texts to add")
    minus: list[Union[ItemId, Text]] = Field(default_factory=list, max_length=MAX_PARTS,
                                             description="item ids or texts to subtract")
    k: int = Field(10, ge=1, le=200)
    modality: str | None = None


class Engine:
    """The index and the model, shared by request threads (SQLite and torch calls are serialised)."""

    def __init__(self, index_dir: str | Path, model_dir: str | Path | None = None, trust_torchscript: bool = False,
                 device: str = "cpu", backend: str = "torch"):
        self.store = Store(index_dir, check_same_thread=False)
        self.embedder = embedder_for(self.store, model_dir, trust_torchscript, device, backend)
        self.lock = threading.Lock()

    def results(self, vector: np.ndarray, k: int, modality: str | None) -> dict:
        wanted = _modalities(modality)
        with self.lock:
            hits = self.store.search(vector, k, wanted)
        return {"results": [{"id": item.id, "name": Path(item.path).name, "modality": item.modality,
                             "score": round(float(score), 6), "media": f"/api/items/{item.id}/media"}
                            for item, score in hits]}

    def embed(self, modality: str, x) -> np.ndarray:
        with self.lock:
            return self.embedder.embed(modality, [x])[0].numpy()


def _modalities(modality: str | None) -> set[str] | None:
    if not modality:
        return None
    wanted = {m.strip() for m in modality.split(",") if m.strip()}
    unknown = wanted - set(modality_names())
    if unknown:
        raise HTTPException(400, f"unknown modality {sorted(unknown)}; known: {', '.join(modality_names())}")
    return wanted


def safe_name(filename: str | None) -> str:
    """An upload's name reduced to a plain file name (letters, digits, ``._-``), kept only for the
    hints it carries (``*depth*``); ``..``, slashes and empty names become ``upload``."""
    name = re.sub(r"[^\w.-]", "_", Path(filename or "").name)[-80:].lstrip(".")
    return name or "upload"


def create_app(index_dir: str | Path, model_dir: str | Path | None = None, token: str | None = None,
               max_upload_mb: float = 25.0, timeout_s: float = 30.0, allowed_hosts: list[str] | None = None,
               decode_memory_mb: float = 1024, trust_torchscript: bool = False, device: str = "cpu",
               backend: str = "torch") -> FastAPI:
    """The app. ``token`` None means no authentication (the CLI allows that on loopback only);
    ``device`` is where the model runs (``auto``, ``cpu``, ``cuda``) and ``backend`` what runs it
    (``torch``, ``onnxruntime``, ``openvino``);
    ``allowed_hosts`` are the ``Host`` names accepted (default: the loopback names)."""
    engine = Engine(index_dir, model_dir, trust_torchscript, device, backend)
    root = engine.store.root
    decoder = DecodePool(engine.embedder.processor, engine.embedder.modalities, decode_memory_mb)
    decoder.warm_up()
    bearer = HTTPBearer(auto_error=False)
    max_upload = int(max_upload_mb * 2**20)

    def auth(cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token is not None and (cred is None or not hmac.compare_digest(cred.credentials.encode(), token.encode())):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    # The page itself holds no data, so it is served without the token; every /api route needs it.
    app = FastAPI(title="polymodal search", docs_url=None, redoc_url=None)
    api = APIRouter(prefix="/api", dependencies=[Depends(auth)])
    app.state.engine, app.state.decoder = engine, decoder
    app.router.on_shutdown.append(decoder.close)

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

    # Outermost first: Host check, then the body limit (before anything reads the body).
    app.add_middleware(BodyLimit, max_bytes=max_upload + 2**16)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_NAMES)

    @api.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @api.get("/stats")
    def stats() -> dict:
        with engine.lock:
            counts, meta = engine.store.counts(), engine.store.meta()
        return {**counts, "model_id": meta["model_id"], "index": meta["kind"], "dim": int(meta["dim"])}

    @api.get("/search")
    def search_text(q: str = Query(..., min_length=1, max_length=2000), k: int = Query(10, ge=1, le=200),
                    modality: str | None = None) -> dict:
        with engine.lock:
            vector = engine.embedder.embed_texts([q])[0].numpy()
        return engine.results(vector, k, modality)

    @api.post("/search/file")
    async def search_file(file: UploadFile = File(...), k: int = Query(10, ge=1, le=200),
                          modality: str | None = None) -> dict:
        name = safe_name(file.filename)
        data = await file.read(max_upload + 1)
        if len(data) > max_upload:
            raise HTTPException(413, f"upload larger than {max_upload_mb:g} MiB")
        if not data:
            raise HTTPException(400, "the uploaded file is empty")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name  # keeps *depth*/*thermal* hints in the name
            path.write_bytes(data)
            try:
                kind, x = await decoder.decode(path, timeout_s)
            except UnsupportedFile as e:
                raise HTTPException(415, str(e).replace(str(path), name)) from None
            except (DecodeTimeout, DecodeBusy) as e:
                raise HTTPException(503, f"{name}: {e}") from None
            except (DecodeCrashed, ValueError, OSError, RuntimeError) as e:
                raise HTTPException(400, f"{name}: {str(e).replace(str(path), name)}") from None
        vector = await run_in_threadpool(engine.embed, kind, x)
        results = await run_in_threadpool(engine.results, vector, k, modality)
        return {"query_modality": kind, **results}

    @api.post("/search/arithmetic")
    def search_arithmetic(query: ArithmeticQuery) -> dict:
        def part(x: int | str) -> np.ndarray:
            if isinstance(x, int):
                with engine.lock:
                    v = engine.store.vector(x)
                if v is None:
                    raise HTTPException(404, f"no indexed item {x}")
                return v
            with engine.lock:
                return engine.embedder.embed_texts([x])[0].numpy()

        parts = ([part(query.text)] if query.text else []) + [part(x) for x in query.plus]
        if not parts:
            raise HTTPException(400, "give text or at least one item in plus")
        total = np.sum(parts, axis=0) - (np.sum([part(x) for x in query.minus], axis=0) if query.minus else 0)
        norm = float(np.linalg.norm(total))
        if norm == 0:
            raise HTTPException(400, "the parts cancel out")
        return engine.results((total / norm).astype(np.float32), query.k, query.modality)

    def indexed(item_id: int):
        with engine.lock:
            it = engine.store.item(item_id)
        if it is None:
            raise HTTPException(404, f"no item {item_id}")
        return it

    @api.get("/items/{item_id}")
    def item(item_id: Annotated[int, PathParam(ge=1, lt=2**63)]) -> dict:
        it = indexed(item_id)
        return {"id": it.id, "name": Path(it.path).name, "path": it.path, "modality": it.modality, "size": it.size,
                "mtime": it.mtime, "sha256": it.sha256, "error": it.error, "media": f"/api/items/{it.id}/media"}

    @api.get("/items/{item_id}/media")
    def media(item_id: Annotated[int, PathParam(ge=1, lt=2**63)]):
        it = indexed(item_id)
        if it.error is not None or root is None:
            why = it.error or "the index records no folder: re-run polymodal index"
            raise HTTPException(404, f"item {item_id} was not indexed ({why})")
        try:
            fd, st = open_item(root, it)
        except MediaGone as e:
            raise HTTPException(404, f"item {item_id}: {e}; re-run polymodal index") from None
        name = Path(it.file).name
        if it.modality in ("audio", "video", "text"):  # streamed as they are, whatever their size
            kind = "text/plain; charset=utf-8" if it.modality == "text" else container_type(it.modality,
                                                                                            os.pread(fd, 16, 0))
            return StreamingResponse(chunks(fd), media_type=kind,
                                     headers={**SAFE_HEADERS, "Content-Length": str(st.st_size)})
        if st.st_size > MAX_PREVIEW_BYTES:
            os.close(fd)
            raise HTTPException(404, f"item {item_id}: {name} is too large to preview ({st.st_size} bytes)")
        data = read_all(fd, st.st_size)
        try:
            if it.modality == "image":
                body, media_type = picture_png(data, name), "image/png"
            elif it.modality == "pdf":
                from ..modalities.pdf import pdf_page

                body, media_type = png_bytes(pdf_page(data, it.page or 1, 512, name=name)), "image/png"
            else:  # depth, thermal, imu
                body, media_type = sensor_picture(data, name, it.modality), "image/png"
        except (ValueError, OSError) as e:
            raise HTTPException(404, f"item {item_id}: {e}; re-run polymodal index") from None
        return Response(body, media_type=media_type, headers=SAFE_HEADERS)

    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    # OpenAPI docs with Swagger UI's own files served from the installed package (no CDN).
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

    app.include_router(api)
    return app
