"""HTTP API over a search index (FastAPI): search by text, by an uploaded file, by embedding
arithmetic; item metadata; media served by item id only; health and stats.

Every user mistake is a 4xx JSON ``{"detail": ...}``: unsupported or empty upload (415/400),
oversize upload (413), malformed JSON (422), unknown item or modality (404/400), missing or wrong
bearer token (401), a request running past the time limit (503).
"""

from __future__ import annotations

import asyncio
import mimetypes
import tempfile
import threading
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from ..modalities.registry import modality_names
from ..search.detect import UnsupportedFile, detect
from ..search.query import embedder_for
from ..search.query import embed_file
from ..search.store import Store

STATIC = Path(__file__).parent / "static"


class ArithmeticQuery(BaseModel):
    text: str | None = Field(None, max_length=2000)
    plus: list[int | str] = Field(default_factory=list, description="item ids or texts to add")
    minus: list[int | str] = Field(default_factory=list, description="item ids or texts to subtract")
    k: int = Field(10, ge=1, le=200)
    modality: str | None = None


class Engine:
    """The index and the model, shared by request threads (SQLite and torch calls are serialised)."""

    def __init__(self, index_dir: str | Path, model_dir: str | Path | None = None):
        self.store = Store(index_dir, check_same_thread=False)
        self.embedder = embedder_for(self.store, model_dir)
        self.lock = threading.Lock()

    def results(self, vector: np.ndarray, k: int, modality: str | None) -> dict:
        wanted = _modalities(modality)
        with self.lock:
            hits = self.store.search(vector, k, wanted)
        return {"results": [{"id": item.id, "name": Path(item.path).name, "modality": item.modality,
                             "score": round(float(score), 6), "media": f"/api/items/{item.id}/media"}
                            for item, score in hits]}


def _modalities(modality: str | None) -> set[str] | None:
    if not modality:
        return None
    wanted = {m.strip() for m in modality.split(",") if m.strip()}
    unknown = wanted - set(modality_names())
    if unknown:
        raise HTTPException(400, f"unknown modality {sorted(unknown)}; known: {', '.join(modality_names())}")
    return wanted


def create_app(index_dir: str | Path, model_dir: str | Path | None = None, token: str | None = None,
               max_upload_mb: float = 25.0, timeout_s: float = 30.0) -> FastAPI:
    engine = Engine(index_dir, model_dir)
    bearer = HTTPBearer(auto_error=False)

    def auth(cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token is not None and (cred is None or cred.credentials != token):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    # The page itself holds no data, so it is served without the token; every /api route needs it.
    app = FastAPI(title="polymodal search", docs_url=None, redoc_url=None)
    api = APIRouter(prefix="/api", dependencies=[Depends(auth)])
    app.state.engine = engine

    @app.middleware("http")
    async def time_limit(request: Request, call_next):
        try:
            return await asyncio.wait_for(call_next(request), timeout_s)
        except asyncio.TimeoutError:
            return JSONResponse({"detail": f"the request took longer than {timeout_s:g} s"}, status_code=503)

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
        data = await file.read(int(max_upload_mb * 2**20) + 1)
        if len(data) > max_upload_mb * 2**20:
            raise HTTPException(413, f"upload larger than {max_upload_mb:g} MiB")
        if not data:
            raise HTTPException(400, "the uploaded file is empty")
        suffix = Path(file.filename or "upload").suffix[:16]
        name = Path(file.filename or "upload").name
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / (Path(name).stem[:64] + suffix)  # keep *depth*/*thermal* hints in the name
            path.write_bytes(data)
            try:
                kind = detect(path)
                with engine.lock:
                    vector = embed_file(engine.embedder, path, kind).numpy()
            except UnsupportedFile as e:
                raise HTTPException(415, str(e).replace(str(path), name)) from None
            except (ValueError, OSError, RuntimeError) as e:
                raise HTTPException(400, f"{name}: {str(e).replace(str(path), name)}") from None
        return {"query_modality": kind, **engine.results(vector, k, modality)}

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

    @api.get("/items/{item_id}")
    def item(item_id: int) -> dict:
        with engine.lock:
            it = engine.store.item(item_id)
        if it is None:
            raise HTTPException(404, f"no item {item_id}")
        return {"id": it.id, "name": Path(it.path).name, "path": it.path, "modality": it.modality, "size": it.size,
                "mtime": it.mtime, "sha256": it.sha256, "error": it.error, "media": f"/api/items/{it.id}/media"}

    @api.get("/items/{item_id}/media")
    def media(item_id: int):
        with engine.lock:
            it = engine.store.item(item_id)
        if it is None:
            raise HTTPException(404, f"no item {item_id}")
        if it.modality == "pdf":  # FILE#page=N: render that page
            import io

            from ..modalities.pdf import pdf_pages
            from ..search.ingest import PAGE, file_of

            source = Path(file_of(it.path))
            if not source.is_file():
                raise HTTPException(404, f"item {item_id}'s file is gone; re-run polymodal index")
            number = int(it.path.rsplit(PAGE, 1)[1])
            page = pdf_pages(source, 512, max_pages=number)[number - 1]
            buf = io.BytesIO()
            page.save(buf, format="PNG")
            return Response(buf.getvalue(), media_type="image/png")
        path = Path(it.path)
        if not path.is_file():
            raise HTTPException(404, f"item {item_id}'s file is gone; re-run polymodal index")
        if it.modality in ("depth", "thermal", "imu"):
            from .render import sensor_png

            return Response(sensor_png(path, it.modality), media_type="image/png")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type)

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
