"""``/api`` search routes: health, stats, search by text, by an uploaded file, by embedding arithmetic."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Union

import numpy as np
from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, StringConstraints

from ..search.detect import UnsupportedFile
from ..search.relevance import DEFAULT_MIN_RELEVANCE
from .decode import DecodeBusy, DecodeCrashed, DecodeTimeout
from .service import Served, safe_name, served

MAX_PARTS = 64  # items added or subtracted in one arithmetic query
ItemId = Annotated[int, Field(ge=1, lt=2**63)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]

router = APIRouter()


def file_filters(folder: str | None = Query(None, max_length=1000), ext: str | None = Query(None, max_length=200),
                 after: str | None = Query(None, max_length=40), before: str | None = Query(None, max_length=40)) -> dict:
    """Filters on the files behind the items: a folder below the indexed one, extensions, a date range."""
    return {"folder": folder, "ext": ext, "after": after, "before": before}


class ArithmeticQuery(BaseModel):
    text: str | None = Field(None, max_length=2000)
    plus: list[Union[ItemId, Text]] = Field(default_factory=list, max_length=MAX_PARTS,
                                            description="item ids or texts to add")
    minus: list[Union[ItemId, Text]] = Field(default_factory=list, max_length=MAX_PARTS,
                                             description="item ids or texts to subtract")
    k: int = Field(10, ge=1, le=200)
    modality: str | None = None



@router.get("/health")
def health() -> dict:
    return {"status": "ok"}


@router.get("/stats")
def stats(s: Served = Depends(served)) -> dict:
    with s.service.lock:
        counts, meta = s.service.store.counts(), s.service.store.meta()
    return {**counts, "model_id": meta["model_id"], "index": meta["kind"], "dim": int(meta["dim"]),
            "default_min_relevance": DEFAULT_MIN_RELEVANCE}


@router.get("/search")
def search_text(q: str = Query(..., min_length=1, max_length=2000), k: int = Query(10, ge=1, le=200),
                modality: str | None = None, mode: str = Query("hybrid", max_length=16),
                min_relevance: float | None = Query(None, ge=0, le=1), where: dict = Depends(file_filters),
                s: Served = Depends(served)) -> dict:
    """Words and meaning (``mode`` hybrid, meaning or words); ``min_relevance``: hide weaker hits and
    say ``no_match`` when none is left."""
    vector = s.service.embed_text(q) if "text" in s.service.embedder.modalities else None
    return s.service.results(vector, k, modality, q, mode, min_relevance, where)


@router.get("/ask")
def ask(q: str = Query(..., min_length=1, max_length=500), pages: int = Query(5, ge=1, le=20),
        s: Served = Depends(served)) -> dict:
    """The answer to ``q`` from the index's documents: the QA model (``serve --qa``) reads the ``pages``
    best pages; without one, ``answer`` is null, ``note`` says why and ``pages`` are the best pages."""
    if not q.strip():
        raise HTTPException(400, "the question is empty")
    return s.service.ask(q, pages)


@router.post("/search/file")
async def search_file(file: UploadFile = File(...), k: int = Query(10, ge=1, le=200), modality: str | None = None,
                      min_relevance: float | None = Query(None, ge=0, le=1), where: dict = Depends(file_filters),
                      s: Served = Depends(served)) -> dict:
    name = safe_name(file.filename)
    data = await file.read(s.max_upload + 1)
    if len(data) > s.max_upload:
        raise HTTPException(413, f"upload larger than {s.max_upload_mb:g} MiB")
    if not data:
        raise HTTPException(400, "the uploaded file is empty")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name  # keeps *depth*/*thermal* hints in the name
        path.write_bytes(data)
        try:
            kind, x = await s.decoder.decode(path, s.timeout_s)
        except UnsupportedFile as e:
            raise HTTPException(415, str(e).replace(str(path), name)) from None
        except (DecodeTimeout, DecodeBusy) as e:
            raise HTTPException(503, f"{name}: {e}") from None
        except (DecodeCrashed, ValueError, OSError, RuntimeError) as e:
            raise HTTPException(400, f"{name}: {str(e).replace(str(path), name)}") from None
    vector = await run_in_threadpool(s.service.embed, kind, x)
    results = await run_in_threadpool(s.service.results, vector, k, modality, None, "meaning", min_relevance, where)
    return {"query_modality": kind, **results}


@router.post("/search/arithmetic")
def search_arithmetic(query: ArithmeticQuery, s: Served = Depends(served)) -> dict:
    service = s.service

    def part(x: int | str) -> np.ndarray:
        if isinstance(x, int):
            with service.lock:
                v = service.store.vector(x)
            if v is None:
                raise HTTPException(404, f"no indexed item {x}")
            return v
        return service.embed_text(x)

    parts = ([part(query.text)] if query.text else []) + [part(x) for x in query.plus]
    if not parts:
        raise HTTPException(400, "give text or at least one item in plus")
    total = np.sum(parts, axis=0) - (np.sum([part(x) for x in query.minus], axis=0) if query.minus else 0)
    norm = float(np.linalg.norm(total))
    if norm == 0:
        raise HTTPException(400, "the parts cancel out")
    return service.results((total / norm).astype(np.float32), query.k, query.modality)
