"""One search over words and meaning: FTS5's bm25 ranking and the vector ranking fused by reciprocal
rank, ``Σ w / (60 + rank)``, each hit saying why it matched and how relevant it is
(:mod:`polymodal.search.relevance`).

Plain reciprocal rank fusion (w = 1, as LanceDB fuses) lets each ranking's noise in: the meaning
ranking of a manual's section title, the words ranking of a scene description. So each
contribution is weighted by that ranking's own evidence for the hit: for meaning, the probability
that it beats the best hits of 20 unrelated queries (relevance ** 20: the Gumbel fit is max-stable);
for words, the share of the query's words it holds. On benchmarks/search_quality.py's mixed set,
nDCG@10 0.605 against 0.385 for plain fusion (words alone 0.470, meaning alone 0.257).

Modes: ``hybrid`` (both rankings), ``meaning`` (vectors only), ``words`` (keywords only; hits still
get their similarity and relevance when there is a query vector).

A hit's relevance is the larger of its calibrated similarity and, when it matched words, the share
of the query's words it holds (all of a plain query's content words, or an FTS5 query that matched:
1.0). With ``min_relevance``, hits below it are dropped and an empty answer says "no good match".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .filters import Filter
from .store import Item, Store
from .words import WordHit, add_snippets, query_terms, word_search

MODES = ("hybrid", "meaning", "words")
RRF_K = 60
EVIDENCE = 20  # a meaning hit's weight is relevance ** EVIDENCE (see the module's docstring)
CANDIDATES = 50  # per ranking, at least; more when k is larger


@dataclass
class Hit:
    id: int
    item: Item | None  # None until the hit is among those shown
    score: float  # the fused score (meaning / words modes: the similarity / the negated bm25)
    similarity: float | None = None  # cosine to the query vector
    relevance: float | None = None  # in [0, 1]
    matched: list[str] = field(default_factory=list)  # query words the item holds
    snippet: list[tuple[str, bool]] | None = None  # its best passage, matched words marked
    ranks: dict[str, int] = field(default_factory=dict)  # its rank in each ranking it came from (1-based)
    words_relevance: float | None = None  # share of the query's words it holds
    meaning_relevance: float | None = None  # its calibrated similarity

    def why(self) -> str:
        """One line: the words it matched and/or its similarity."""
        parts = []
        if self.matched:
            parts.append("words: " + ", ".join(self.matched))
        if self.similarity is not None and "meaning" in self.ranks:
            parts.append(f"meaning: similarity {self.similarity:.3f}")
        return "; ".join(parts) or "—"

    def to_json(self) -> dict:
        it = self.item
        out = {"id": it.id, "path": it.path, "modality": it.modality, "score": round(self.score, 6),
               "similarity": None if self.similarity is None else round(self.similarity, 6),
               "relevance": None if self.relevance is None else round(self.relevance, 4),
               "matched": self.matched, "why": self.why(), "ranks": self.ranks}
        if self.snippet is not None:
            out["snippet"] = [{"text": t, "match": m} for t, m in self.snippet]
        if it.page is not None:
            out["page"] = it.page
        if it.t_start is not None:
            out["start"], out["end"] = it.t_start, it.t_end
        return out


@dataclass
class Answer:
    hits: list[Hit]
    mode: str
    no_match: bool = False  # min_relevance was given and nothing cleared it
    best_relevance: float | None = None  # of the hits before the cut

    def to_json(self) -> dict:
        return {"mode": self.mode, "no_match": self.no_match, "best_relevance": self.best_relevance,
                "results": [h.to_json() for h in self.hits]}


def hybrid_search(store: Store, vector: np.ndarray | None, text: str | None, k: int = 10, mode: str = "hybrid",
                  modalities: set[str] | None = None, calibration=None, min_relevance: float | None = None,
                  where: Filter | None = None) -> Answer:
    """The ``k`` best items for a query ``vector`` [E] (its embedding) and/or ``text`` (its words),
    of ``modalities`` and what ``where`` keeps (folder, extension, dates) when given."""
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; choose from {', '.join(MODES)}")
    n = max(CANDIDATES, 3 * k)
    meaning: list[tuple[int, float]] = []
    words: list[WordHit] = []
    if modalities:
        where = Filter(frozenset(modalities)) if where is None else replace(where, modalities=frozenset(modalities))
    if mode in ("hybrid", "meaning") and vector is not None:
        meaning = store.search_ids(vector, n, where=where)
    if mode in ("hybrid", "words") and text:
        attributes = store.attributes()
        keep = attributes.mask(where, with_modality=True) if where is not None else None
        words = word_search(store.db, text, n, keep=keep, snippets=False, total=attributes.count)
    if mode == "words" and not text:
        raise ValueError("a words search needs query text")
    if vector is None and not text:
        raise ValueError("a query needs text, a file or a vector")
    hits: dict[int, Hit] = {}
    for rank, (item_id, sim) in enumerate(meaning, 1):
        hits[item_id] = Hit(item_id, None, 0.0, similarity=float(sim), ranks={"meaning": rank})
    for rank, w in enumerate(words, 1):
        hits.setdefault(w.item_id, Hit(w.item_id, None, 0.0)).ranks["words"] = rank
    _meaning_relevance(calibration, store, [h for h in hits.values() if h.similarity is not None])
    _coverage(store, text, [h for h in hits.values() if "words" in h.ranks])
    for hit in hits.values():
        if mode == "meaning":
            hit.score = hit.similarity
        elif mode == "words":
            hit.score = -words[hit.ranks["words"] - 1].bm25
        else:
            hit.score = sum(_weight(hit, ranking) / (RRF_K + rank) for ranking, rank in hit.ranks.items())
    ranked = []
    for hit in sorted(hits.values(), key=lambda h: -h.score):  # items read for the shown hits only
        if len(ranked) == k:
            break
        hit.item = store.item(hit.id)
        if hit.item is not None:
            ranked.append(hit)
    shown_ids = {h.id for h in ranked}
    shown = [w for w in words if w.item_id in shown_ids]
    add_snippets(store.db, text, shown)
    for w in shown:
        hits[w.item_id].snippet = w.snippet
        if hits[w.item_id].words_relevance is not None and not hits[w.item_id].matched:  # an FTS5-syntax query
            hits[w.item_id].matched = w.matched
    _similarities(store, vector, ranked)
    _meaning_relevance(calibration, store, [h for h in ranked if h.meaning_relevance is None])
    for h in ranked:
        h.relevance = max((r for r in (h.meaning_relevance, h.words_relevance) if r is not None), default=None)
    best = max((h.relevance for h in ranked if h.relevance is not None), default=None)
    answer = Answer(ranked, mode, best_relevance=None if best is None else round(float(best), 4))
    if min_relevance is not None:
        answer.hits = [h for h in ranked if h.relevance is not None and h.relevance >= min_relevance]
        answer.no_match = not answer.hits
    return answer


def _weight(hit: Hit, ranking: str) -> float:
    """How much a ranking's vote for ``hit`` counts: its evidence, or 1 where none is measured."""
    if ranking == "meaning":
        return 1.0 if hit.meaning_relevance is None else hit.meaning_relevance ** EVIDENCE
    return 1.0 if hit.words_relevance is None else hit.words_relevance


def _similarities(store: Store, vector, hits: list[Hit]) -> None:
    """Fill the similarity of hits that came from words only (their stored vector · the query)."""
    if vector is None:
        return
    q = np.asarray(vector, np.float32).reshape(-1)
    for h in hits:
        if h.similarity is None:
            v = store.vector(h.item.id)
            h.similarity = None if v is None else float(v @ q)


def _coverage(store: Store, text: str | None, hits: list[Hit]) -> None:
    """Which of the query's words each hit holds (one FTS5 lookup per word over the hits' rows), and
    the share of them as its words relevance; an FTS5-syntax query that matched counts whole."""
    terms = query_terms(text)
    if not hits or terms == []:
        return
    if terms is None:
        for h in hits:
            h.words_relevance = 1.0
        return
    marks = ",".join("?" * len(hits))
    holds: dict[int, list[str]] = {}
    for term in terms:
        for (row,) in store.db.execute(f"SELECT rowid FROM texts WHERE texts MATCH ? AND rowid IN ({marks})",
                                       (f'"{term}"', *(h.id for h in hits))):
            holds.setdefault(row, []).append(term)
    for h in hits:
        h.matched = holds.get(h.id, [])
        h.words_relevance = len(h.matched) / len(terms)


def _meaning_relevance(calibration, store: Store, hits: list[Hit]) -> None:
    """Each hit's calibrated similarity (its modality from the index's attributes)."""
    if calibration is None or not hits:
        return
    modality_of = store.attributes().modality_names([h.id for h in hits])
    for h, modality in zip(hits, modality_of):
        if h.similarity is not None:
            value = float(calibration.relevance(modality, np.array([h.similarity]))[0])
            h.meaning_relevance = None if np.isnan(value) else value


class Searcher:
    """An index and its model, ready for hybrid queries: keeps the index's calibration, rebuilt when
    another process has changed the index (its generation moved on)."""

    def __init__(self, store: Store, embedder):
        self.store, self.embedder = store, embedder
        self._calibration = None

    def calibration(self):
        from .relevance import Calibration

        if "text" not in self.embedder.modalities:
            return None
        if self._calibration is None or self._calibration.generation != self.store.generation():
            self._calibration = Calibration.current(self.store, lambda t: self.embedder.embed_texts(t).numpy())
        return self._calibration

    def search(self, vector: np.ndarray | None, text: str | None, k: int = 10, mode: str = "hybrid",
               modalities: set[str] | None = None, min_relevance: float | None = None,
               where: Filter | None = None) -> Answer:
        """:func:`hybrid_search` with this index's calibration."""
        return hybrid_search(self.store, vector, text, k, mode, modalities, self.calibration(), min_relevance, where)
