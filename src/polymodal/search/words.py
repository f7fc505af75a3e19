"""Keyword search over the index's ``texts`` table (SQLite FTS5, bm25-ranked).

A query written in FTS5's own syntax — a quoted phrase (``"invoice 4471"``), a prefix (``inv*``), the
operators ``AND OR NOT NEAR``, parentheses, a column filter (``name: report``) — is passed to FTS5 as
it is. A plain query (``the total on the march invoice``) becomes its content words joined by OR,
so that bm25 ranks a page with more of them higher, as a search box user expects, instead of FTS5's
implicit AND finding nothing. The query always travels as an SQL parameter, never as SQL.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

MAX_QUERY_CHARS = 2000
HIT, END = "\x02", "\x03"  # snippet markers (control characters: no text in the index holds them)
# Words too common to say anything about a match (a plain query drops them; a quoted phrase keeps them).
STOPWORDS = frozenset("""a an and are as at be by for from has have in is it its of on or that the this to was
were what which who with where when how there their then than into onto over under near next
i you he she we they me my your our his her them do does did not no yes""".split())
_SYNTAX = re.compile(r'["*()^]|\b(AND|OR|NOT|NEAR)\b|\b(name|body)\s*:')
_TOKEN = re.compile(r"\w+", re.UNICODE)


class QueryError(ValueError):
    """A keyword query FTS5 cannot parse; the message gives FTS5's reason."""


@dataclass
class WordHit:
    item_id: int
    bm25: float  # FTS5's bm25: lower (more negative) is better
    snippet: list[tuple[str, bool]]  # the best passage as (text, matched?) pieces

    @property
    def matched(self) -> list[str]:
        """The distinct words of the snippet that matched the query, lower-cased, in order."""
        seen: dict[str, None] = {}
        for text, hit in self.snippet:
            if hit:
                seen.setdefault(text.lower(), None)
        return list(seen)


def uses_syntax(text: str) -> bool:
    """Whether ``text`` is written in FTS5's query syntax (quotes, ``*``, operators, parentheses)."""
    return bool(_SYNTAX.search(text))


def query_terms(text: str | None) -> list[str] | None:
    """A plain query's content words, as searched (None for an FTS5-syntax query)."""
    query = fts_query(text or "")
    if query is None:
        return []
    if uses_syntax(text.strip()):
        return None
    return [t.strip('"') for t in query.split(" OR ")]


def fts_query(text: str) -> str | None:
    """The FTS5 query for a user's ``text``: as written when it uses FTS5 syntax, else its content
    words OR-ed, each quoted (so that a word such as ``near`` or ``and`` is a word, not an operator).
    None when nothing searchable is left (only stop words or punctuation)."""
    text = text.strip()[:MAX_QUERY_CHARS]
    if not text:
        return None
    if uses_syntax(text):
        return text
    tokens = [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]
    if not tokens:
        tokens = _TOKEN.findall(text.lower())  # a query made only of stop words still means something
    return " OR ".join(f'"{t}"' for t in dict.fromkeys(tokens)) or None


def common_terms(db: sqlite3.Connection, terms: list[str], share: float = 0.25, total: int | None = None) -> set[str]:
    """The ``terms`` found in more than ``share`` of the indexed items (FTS5's own term counts, through
    an ``fts5vocab`` table of this connection): they rank nothing (bm25 gives a term in half the
    items no weight) and would make FTS5 rank most of the index. ``total``: the items with words
    (counted when not given)."""
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.texts_vocab USING fts5vocab(main, texts, 'row')")
    if total is None:
        total = db.execute("SELECT COUNT(*) FROM texts_docsize").fetchone()[0]
    counts = {t: (db.execute("SELECT doc FROM temp.texts_vocab WHERE term = ?", (t,)).fetchone() or (0,))[0]
              for t in terms}
    return {t for t, n in counts.items() if n > share * total}


def pruned_query(db: sqlite3.Connection, text: str, total: int | None = None) -> str | None:
    """:func:`fts_query`, less the plain query's :func:`common_terms` (the rarest stays when all are)."""
    terms = query_terms(text)
    if not terms:
        return fts_query(text)
    common = common_terms(db, terms, total=total)
    kept = [t for t in terms if t not in common] or [min(terms, key=lambda t: t in common)]
    return " OR ".join(f'"{t}"' for t in kept)


def word_search(db: sqlite3.Connection, text: str, k: int, modalities: set[str] | None = None,
                snippet_words: int = 12, keep=None, snippets: bool = True, total: int | None = None) -> list[WordHit]:
    """The ``k`` best items for ``text`` by bm25 (a match in the name counts 3× a match in the body),
    restricted to ``modalities`` and to the ids a bool array ``keep`` [max id + 1] marks (a
    :class:`~polymodal.search.filters.Filter`'s mask), with each item's best snippet
    (``snippets=False``: none, see :func:`add_snippets`). Raises :class:`QueryError` with FTS5's
    reason for a malformed query.

    FTS5 ranks its matches itself (``ORDER BY rank``, the index's bm25 weights); words found in more
    than a quarter of the items are left out of a plain query (:func:`common_terms`); the snippets are
    made for the ``k`` kept rows only."""
    query = pruned_query(db, text, total)
    if query is None or k < 1:
        return []
    where, params = "texts MATCH ?", [query]
    if modalities:
        where += f" AND rowid IN (SELECT id FROM items WHERE modality IN ({','.join('?' * len(modalities))}))"
        params += sorted(modalities)
    limit = "" if keep is not None else " LIMIT ?"
    try:
        cursor = db.execute(f"SELECT rowid, rank FROM texts WHERE {where} ORDER BY rank{limit}",
                            (*params,) if keep is not None else (*params, int(k)))
        hits: list[WordHit] = []
        while len(hits) < k and (batch := cursor.fetchmany(256)):
            for rowid, rank in batch:
                if keep is None or (rowid < len(keep) and keep[rowid]):
                    hits.append(WordHit(int(rowid), float(rank), []))
        cursor.close()
    except sqlite3.OperationalError as e:
        reason = str(e).removeprefix("fts5: ")
        raise QueryError(f"cannot parse the keyword query {text!r}: {reason} (quote words that are "
                         "FTS5 operators or punctuation, e.g. \"AND\")") from None
    hits = hits[:k]
    if snippets:
        add_snippets(db, text, hits, snippet_words)
    return hits


def add_snippets(db: sqlite3.Connection, text: str, hits: list[WordHit], snippet_words: int = 12) -> None:
    """Fill each hit's best passage, its matched words marked (one FTS5 query for all the hits)."""
    query = fts_query(text or "")
    if not hits or query is None:
        return
    ids = [h.item_id for h in hits]
    rows = db.execute(f"SELECT rowid, snippet(texts, -1, '{HIT}', '{END}', '…', {int(snippet_words)}) FROM texts "
                      f"WHERE texts MATCH ? AND rowid IN ({','.join('?' * len(ids))})", (query, *ids))
    found = dict(rows.fetchall())
    for h in hits:
        h.snippet = pieces(found.get(h.item_id, ""))


def pieces(snippet: str) -> list[tuple[str, bool]]:
    """``a \\x02b\\x03 c`` → [("a ", False), ("b", True), (" c", False)]."""
    out: list[tuple[str, bool]] = []
    for part in re.split(f"({HIT}[^{END}]*{END})", snippet):
        if part.startswith(HIT):
            out.append((part[1:-1], True))
        elif part:
            out.append((part, False))
    return out
