"""``polymodal index | search | serve``: a folder's index, queries against it, and the HTTP server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

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
) -> None:
    """Index every file below FOLDER by content (images, audio, video, text, depth/thermal/IMU .npy):
    new and changed files are embedded, deleted ones dropped, unreadable ones recorded and reported.
    One run writes an index at a time; a second one waits, saying which process holds it."""
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
                                  on_wait=lambda who: problem("", who, "yellow"))
    except (StoreError, ValueError, NotADirectoryError) as e:
        fail(str(e))
    for path, error in report.failed:
        problem("skipped", error if path in error else f'{path}: {error}', "yellow")
    for path, note in report.partial:
        problem("partly:", note, "yellow")
    console.print_json(json.dumps({**report.as_dict(), **store.counts()}))


@app.command()
def search(
    index_dir: Annotated[Path, typer.Argument(metavar="INDEX")],
    text: Annotated[Optional[str], typer.Argument(help="query text")] = None,
    image: Annotated[Optional[Path], typer.Option(help="query with an image")] = None,
    audio: Annotated[Optional[Path], typer.Option(help="query with a sound")] = None,
    file: Annotated[Optional[Path], typer.Option(help="query with any supported file")] = None,
    plus: Annotated[Optional[list[str]], typer.Option(help="add a file or text to the query")] = None,
    minus: Annotated[Optional[list[str]], typer.Option(help="subtract a text (or file) from the query")] = None,
    modality: Annotated[Optional[str], typer.Option(help="only these result modalities, e.g. image,audio")] = None,
    k: Annotated[int, typer.Option("-k", help="number of results")] = 10,
    model: Annotated[Optional[Path], typer.Option(help="model folder (default: the one the index was built with)")] = None,
    trust_torchscript: Annotated[bool, typer.Option(help="allow a TorchScript model file (it holds code)")] = False,
    device: Annotated[str, DEVICE] = "auto",
    backend: Annotated[str, BACKEND] = "torch",
) -> None:
    """Search an index with text, a file of any modality, or embedding arithmetic (--plus/--minus)."""
    from ..search.detect import UnsupportedFile
    from ..search.query import embedder_for
    from ..search.query import query_vector
    from ..search.store import StoreError, Store

    try:
        store = Store(index_dir)
        embedder = embedder_for(store, model, trust_torchscript, device_for(backend, device), backend)
        files = [f for f in (image, audio, file) if f is not None]
        vector = query_vector(embedder, text, files, plus or [], minus or [])
        wanted = set(modality.split(",")) if modality else None
        results = store.search(vector, k, wanted)
    except (StoreError, UnsupportedFile, ValueError, OSError) as e:
        fail(str(e))
    table = Table("rank", "score", "modality", "path")
    table.columns[-1].overflow = "fold"  # a long path wraps rather than losing its end (the file name, #t=…)
    for rank, (item, score) in enumerate(results, 1):
        table.add_row(str(rank), f"{score:.3f}", item.modality, item.path)
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
                         trust_torchscript=trust_torchscript, device=device_for(backend, device), backend=backend)
    except (StoreError, ValueError) as e:
        fail(str(e))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    fragment = f"#token={token}" if token else ""
    console.print(f"serving {safe(index_dir)} at http://{shown}:{port}/{fragment}", highlight=False, soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
