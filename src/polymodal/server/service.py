"""What the HTTP routes share: the index and the model behind one lock, the upload decoder, and the
limits a request must keep (:class:`Served`, held in ``app.state.served``)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import HTTPException, Request

from ..modalities.registry import modality_names
from ..search.filters import Filter, FilterError
from ..search.hybrid import MODES, Searcher
from ..search.query import embedder_for
from ..search.store import Store
from ..search.words import QueryError
from .decode import DecodePool


class SearchService:
    """The index and the model, shared by request threads (SQLite and torch calls are serialised)."""

    def __init__(self, index_dir: str | Path, model_dir: str | Path | None = None, trust_torchscript: bool = False,
                 device: str = "cpu", backend: str = "torch", qa_dir: str | Path | None = None):
        self.store = Store(index_dir, check_same_thread=False)
        self.embedder = embedder_for(self.store, model_dir, trust_torchscript, device, backend)
        self.searcher = Searcher(self.store, self.embedder)
        self.qa = None
        if qa_dir is not None:
            from ..tasks.documents import DocumentModel

            self.qa = DocumentModel.from_folder(qa_dir)
            self.qa.require("qa")
        self.lock = threading.Lock()

    def results(self, vector: np.ndarray | None, k: int, modality: str | None, text: str | None = None,
                mode: str = "meaning", min_relevance: float | None = None, where: dict | None = None) -> dict:
        """The ``k`` best items for ``vector`` [E] and/or ``text`` (of the comma-separated ``modality``
        only, if given, and the ``where`` filters: folder, ext, after, before): each with its
        relevance, why it matched, its page or moment."""
        wanted = modalities(modality)
        if mode not in MODES:
            raise HTTPException(400, f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        try:
            with self.lock:
                flt = Filter.parse(",".join(sorted(wanted)) if wanted else None, **(where or {}), root=self.store.root)
                answer = self.searcher.search(vector, text, k, mode, None, min_relevance, flt)
        except (QueryError, FilterError) as e:
            raise HTTPException(400, str(e)) from None
        out = answer.to_json()
        for hit in out["results"]:  # the page shows names; paths stay on the server
            hit["name"] = Path(hit.pop("path")).name
            hit["media"] = f"/api/items/{hit['id']}/media"
        return out

    def ask(self, question: str, pages: int) -> dict:
        """The answer from the index's pages (:func:`~polymodal.search.ask.ask_index`), paths as names."""
        from ..search.ask import ask_index

        try:
            with self.lock:
                asked = ask_index(self.searcher, question, self.qa, pages)
        except QueryError as e:
            raise HTTPException(400, str(e)) from None
        out = asked.to_json()
        for page in out["pages"] + ([out["answer"]] if out["answer"] else []):
            page["name"] = Path(page.pop("file")).name
            page["media"] = f"/api/items/{page['id']}/media"
            page["retrieval"].pop("path", None)
        return out

    def embed(self, modality: str, x) -> np.ndarray:
        with self.lock:
            return self.embedder.embed(modality, [x])[0].numpy()

    def embed_text(self, text: str) -> np.ndarray:
        with self.lock:
            return self.embedder.embed_texts([text])[0].numpy()


@dataclass
class Served:
    """One server's service, decoder and limits."""

    service: SearchService
    decoder: DecodePool
    token: str | None
    max_upload_mb: float
    timeout_s: float

    @property
    def max_upload(self) -> int:
        """The upload limit in bytes."""
        return int(self.max_upload_mb * 2**20)


def served(request: Request) -> Served:
    """The route dependency: this app's :class:`Served`."""
    return request.app.state.served


def modalities(modality: str | None) -> set[str] | None:
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
