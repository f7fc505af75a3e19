"""``polymodal index | search | serve``: a folder's index, queries against it, and the HTTP server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..search.relevance import DEFAULT_MIN_RELEVANCE
from .app import BACKEND, DEVICE, app, console, device_for, fail, problem, safe


@app.command()
def index(
    folder: Path,
    model: Annotated[Path, typer.Option(help="an ImageBind or CLIP model folder with its tokenizer (e.g. runs/imagebind-world/model); "
                                             "a VideoCLIP folder indexes videos as clips (FILE#t=START,END)")],
    out: Annotated[Path, typer.Option(help="the index folder (created; re-running updates it)")],
    batch: int = 32,
    approximate: Annotated[bool, typer.Option(help="HNSW instead of exact inner product (large collections)")] = False,
    trust_torchscript: Annotated[bool, typer.Option(help="allow a TorchScript model file (it holds code)")] = False,
    device: Annotated[str, DEVICE] = "auto",
    backend: Annotated[str, BACKEND] = "torch",
    ocr: Annotated[str, typer.Option(help="read the words of pictures and scanned PDF pages with Tesseract: auto (where "
                                          "a quick look finds printed text), on (every picture), off")] = "auto",
) -> None:
    """Index every file below FOLDER by content (images, audio, video, text, depth/thermal/IMU .npy):
    new and changed files are embedded, deleted ones dropped, unreadable ones recorded and reported.
    Every item's words (text files, PDF text, OCR, subtitles, file names) go into a keyword index
    beside the vectors. One run writes an index at a time; a second one waits, saying which process holds it."""
    from rich.progress import Progress

    from ..tasks import Embedder
    from ..search.ingest import index_folder
    from ..search.store import StoreError, Store
    from ..weights import trust_torchscript as allowing

    try:
        with allowing(trust_torchscript):
            embedder = Embedder.from_checkpoint(model, device=device_for(backend, device), backend=backend)
        store = Store(out, embedder.dim, embedder.model_id, str(model.resolve()), "hnsw" if approximate else "flat")
        with Progress(console=console) as bar:
            task = bar.add_task("embedding", total=None)
            report = index_folder(folder, embedder, store, batch,
                                  progress=lambda done, total: bar.update(task, completed=done, total=total),
                                  on_wait=lambda who: problem("", who, "yellow"), ocr=ocr)
    except (StoreError, ValueError, NotADirectoryError) as e:
        fail(str(e))
    for path, error in report.failed:
        problem("skipped", error if path in error else f'{path}: {error}', "yellow")
    for path, note in report.partial:
        problem("partly:", note if not path or path in note else f"{path}: {note}", "yellow")
    console.print_json(json.dumps({**report.as_dict(), **store.counts()}))


@app.command()
def search(
    index_dir: Annotated[Path, typer.Argument(metavar="INDEX")],
    text: Annotated[Optional[str], typer.Argument(help="query text: its meaning, and its words (FTS5 syntax works: "
                                                       "\"a phrase\", prefix*, AND/OR/NOT)")] = None,
    image: Annotated[Optional[Path], typer.Option(help="query with an image")] = None,
    audio: Annotated[Optional[Path], typer.Option(help="query with a sound")] = None,
    file: Annotated[Optional[Path], typer.Option(help="query with any supported file")] = None,
    plus: Annotated[Optional[list[str]], typer.Option(help="add a file or text to the query")] = None,
    minus: Annotated[Optional[list[str]], typer.Option(help="subtract a text (or file) from the query")] = None,
    modality: Annotated[Optional[str], typer.Option(help="only these result modalities, e.g. image,audio")] = None,
    folder: Annotated[Optional[str], typer.Option(help="only files below this folder of the indexed one, e.g. photos/2024")] = None,
    ext: Annotated[Optional[str], typer.Option(help="only these file extensions, e.g. jpg,png")] = None,
    after: Annotated[Optional[str], typer.Option(help="only files modified on or after this date (2024-05-01, UTC)")] = None,
    before: Annotated[Optional[str], typer.Option(help="only files modified before this date")] = None,
    k: Annotated[int, typer.Option("-k", help="number of results")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid (words and meaning, fused by rank), meaning or words")] = "hybrid",
    min_relevance: Annotated[float, typer.Option(help="hide hits less relevant than this (0–1, calibrated against "
                                                      "unrelated queries); none left: 'no good match'")] = DEFAULT_MIN_RELEVANCE,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
    model: Annotated[Optional[Path], typer.Option(help="model folder (default: the one the index was built with)")] = None,
    trust_torchscript: Annotated[bool, typer.Option(help="allow a TorchScript model file (it holds code)")] = False,
    device: Annotated[str, DEVICE] = "auto",
    backend: Annotated[str, BACKEND] = "torch",
) -> None:
    """Search an index by words and meaning: text, a file of any modality, or embedding arithmetic
    (--plus/--minus). Each hit says why it matched and how relevant it is."""
    from ..search.detect import UnsupportedFile
    from ..search.filters import Filter
    from ..search.hybrid import Searcher
    from ..search.query import embedder_for, query_vector
    from ..search.store import StoreError, Store

    try:
        store = Store(index_dir)
        where = Filter.parse(modality, folder, ext, after, before, store.root)
        embedder = embedder_for(store, model, trust_torchscript, device_for(backend, device), backend)
        files = [f for f in (image, audio, file) if f is not None]
        vector = query_vector(embedder, text, files, plus or [], minus or []) if mode != "words" else (
            query_vector(embedder, text) if text and "text" in embedder.modalities else None)
        answer = Searcher(store, embedder).search(vector, text, k, mode, None, min_relevance, where)
    except (StoreError, UnsupportedFile, ValueError, OSError) as e:
        fail(str(e))
    if as_json:
        console.print_json(json.dumps(answer.to_json()))
        return
    print_answer(answer)


def print_answer(answer) -> None:
    """The hits as a table (rank, relevance, modality, path with page or moment, why), or "no good match"."""
    if answer.no_match:
        best = "" if answer.best_relevance is None else f" (the best hit's relevance is {answer.best_relevance:.2f})"
        console.print(f"no good match{best}; --min-relevance 0 shows the nearest items anyway", highlight=False)
        return
    table = Table("rank", "relevance", "modality", "path", "why")
    table.columns[3].overflow = "fold"  # a long path wraps rather than losing its end (the file name, #t=…)
    for rank, hit in enumerate(answer.hits, 1):
        why = safe(hit.why())
        if hit.snippet:
            why += "\n" + "".join(f"[bold]{safe(t)}[/bold]" if m else safe(t) for t, m in hit.snippet)
        relevance = "—" if hit.relevance is None else f"{hit.relevance:.2f}"
        table.add_row(str(rank), relevance, hit.item.modality, safe(hit.item.path), why)
    console.print(table)


@app.command()
def ask(
    index_dir: Annotated[Path, typer.Argument(metavar="INDEX")],
    question: Annotated[str, typer.Argument(help='e.g. "what is the total on the March invoice?"')],
    qa: Annotated[Optional[Path], typer.Option(help="a document QA model folder (objective.kind doc_qa, or a "
                                                    "LayoutLM QA checkpoint); without one, the best pages are shown")] = None,
    pages: Annotated[int, typer.Option(help="how many of the best pages the QA model reads")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
    model: Annotated[Optional[Path], typer.Option(help="model folder (default: the one the index was built with)")] = None,
    trust_torchscript: Annotated[bool, typer.Option(help="allow a TorchScript model file (it holds code)")] = False,
    device: Annotated[str, DEVICE] = "auto",
) -> None:
    """Answer a question from the documents of an index: hybrid search finds the pages, the QA model
    reads them, and the surest answer comes with its file, page, score and box."""
    from ..search.ask import ask_index
    from ..search.hybrid import Searcher
    from ..search.query import embedder_for
    from ..search.store import StoreError, Store
    from .documents import _document_model

    if not 1 <= pages <= 50:
        fail(f"--pages must be 1–50, got {pages}")
    doc_model = _document_model(qa, "qa") if qa is not None else None
    try:
        store = Store(index_dir)
        embedder = embedder_for(store, model, trust_torchscript, device_for("torch", device))
        asked = ask_index(Searcher(store, embedder), question, doc_model, pages)
    except (StoreError, ValueError, OSError) as e:
        fail(str(e))
    if as_json:
        console.print_json(json.dumps(asked.to_json(), ensure_ascii=False))
        return
    print_asked(asked)


def print_asked(asked) -> None:
    if asked.note:
        problem("note:", asked.note, "yellow")
    best = asked.best
    if best is not None:
        where = f"{best.hit.item.file}, page {best.hit.item.page or 1}"
        console.print(f"[bold]{safe(best.answer)}[/bold]  (score {best.score:.3f}; {safe(where)}; box "
                      f"{best.box})", highlight=False, soft_wrap=True)
    elif asked.qa:
        console.print("no answer found on the best pages", highlight=False)
    table = Table("rank", "page", "answer", "score", "why")
    table.columns[1].overflow = "fold"
    for rank, p in enumerate(asked.pages, 1):
        answer = p.error or p.answer or ("—" if asked.qa else "")
        table.add_row(str(rank), safe(f"{p.hit.item.file} p{p.hit.item.page or 1}"), safe(answer),
                      f"{p.score:.3f}" if asked.qa and not p.error else "", safe(p.hit.why()))
    console.print(table)


@app.command()
def serve(
    index_dir: Annotated[Path, typer.Argument(metavar="INDEX")],
    host: str = "127.0.0.1",
    port: int = 8000,
    token: Annotated[Optional[str], typer.Option(help="the bearer token every /api request needs (default: a new "
                                                      "random one, printed in the page's URL)")] = None,
    no_token: Annotated[bool, typer.Option("--no-token", help="no authentication (loopback hosts only)")] = False,
    allowed_host: Annotated[Optional[list[str]], typer.Option(help="a Host name clients use (default: the loopback "
                                                                   "names, or HOST); repeat for several")] = None,
    model: Annotated[Optional[Path], typer.Option(help="model folder (default: the one the index was built with)")] = None,
    trust_torchscript: Annotated[bool, typer.Option(help="allow a TorchScript model file (it holds code)")] = False,
    qa: Annotated[Optional[Path], typer.Option(help="a document QA model folder: the UI's 'ask' box and /api/ask "
                                                    "answer from the index's pages")] = None,
    max_upload_mb: float = 25.0,
    timeout: Annotated[float, typer.Option(help="seconds a request may take")] = 30.0,
    device: Annotated[str, DEVICE] = "auto",
    backend: Annotated[str, BACKEND] = "torch",
) -> None:
    """Serve the search API and web UI for INDEX (FastAPI + uvicorn, 127.0.0.1 by default).

    Every /api request needs a bearer token: give one with --token or use the random one printed
    in the URL (the page takes it from the URL's #fragment, which never reaches the server's logs,
    and drops it from the address bar)."""
    import uvicorn

    from ..search.store import StoreError
    from ..server.app import access, create_app

    try:
        token, hosts = access(host, token, no_token, allowed_host)
    except ValueError as e:
        fail(str(e))
    try:
        app = create_app(index_dir, model, token, max_upload_mb, timeout, allowed_hosts=hosts,
                         trust_torchscript=trust_torchscript, device=device_for(backend, device), backend=backend,
                         qa_dir=qa)
    except (StoreError, ValueError, TypeError, FileNotFoundError) as e:
        fail(str(e))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    fragment = f"#token={token}" if token else ""
    console.print(f"serving {safe(index_dir)} at http://{shown}:{port}/{fragment}", highlight=False, soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
