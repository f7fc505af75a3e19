"""The ``polymodal`` command line: models, info, embed, zero-shot, train, bind, index, search, serve, pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Multimodal transformers that load official checkpoints.")
console = Console()
err = Console(stderr=True)

TEXT_SUFFIXES = {".txt"}


def _fail(message: str) -> None:
    from rich.markup import escape

    err.print(f"[red]error:[/red] {escape(message)}")  # shapes like [seconds, 512] are text, not markup
    raise typer.Exit(2)


def _read_boxes(path: Path | None) -> list | None:
    """--boxes: a JSON list of [x0, y0, x1, y1] pixel boxes (None when not given)."""
    if path is None:
        return None
    listed = json.loads(path.read_text())
    if not isinstance(listed, list) or not all(isinstance(b, list) and len(b) == 4 for b in listed):
        raise ValueError(f"{path}: expected a JSON list of [x0, y0, x1, y1] boxes")
    return listed


@app.command()
def models() -> None:
    """List the presets with their parameter counts."""
    import torch

    from .registry import PRESETS, build, family_of

    table = Table(title="polymodal presets")
    for col in ("preset", "family", "parameters", "input"):
        table.add_column(col, justify="right" if col == "parameters" else "left")
    for name, make in PRESETS.items():
        config = make()
        with torch.device("meta"):  # count without allocating
            n = sum(p.numel() for p in build(config).parameters())
        vision = getattr(config, "vision", config)
        size = f"{vision.image_size}px" if hasattr(vision, "image_size") else "text"
        table.add_row(name, family_of(config), f"{n / 1e6:,.1f}M", size)
    console.print(table)


@app.command()
def info(checkpoints: Annotated[list[Path], typer.Argument(help="checkpoint files or folders")]) -> None:
    """Show each checkpoint's detected layout, family, architecture and parameter count."""
    from .weights import CheckpointError, describe

    failed = []
    for checkpoint in checkpoints:
        try:
            d = describe(checkpoint)
        except (CheckpointError, FileNotFoundError) as e:
            err.print(f"[red]error:[/red] {e}")
            failed.append(checkpoint)
            continue
        console.print(f"[bold]{d['file']}[/bold]\nlayout: {d['layout']} ({d['description']})\n"
                      f"family: {d['family']}\ntensors: {d['tensors']}\nparameters: {d['parameters']:,}")
        if d["supported"]:
            console.print_json(json.dumps(d["config"]))
        else:
            console.print(f"a {d['description']} checkpoint; not supported yet")
    if failed:
        raise typer.Exit(2)


BF16 = typer.Option("--bf16", help="run the model in bfloat16 (faster on CPUs with AVX512-BF16/AMX)")
BACKEND = typer.Option("--backend", help="what runs the towers: torch, onnxruntime or openvino (CPU; exported, "
                                          "verified and cached on first use; needs polymodal[onnx] / [openvino])")
DEVICE = typer.Option("--device", help="where the model runs: auto (a CUDA GPU when present), cpu, cuda or cuda:N")


def _device_for(backend: str, device: str) -> str:
    """``auto`` is the CPU for the exported backends (they run there)."""
    return "cpu" if backend != "torch" and device == "auto" else device


def _with_device(overrides: list[str], device: str | None) -> list[str]:
    """A run's key=value overrides, with ``--device X`` as ``train.device=X``."""
    return [*overrides, f"train.device={device}"] if device else list(overrides)


def _load_encoder(checkpoint: Path, bf16: bool = False, device: str = "auto", backend: str = "torch"):
    import torch

    from .tasks import Embedder
    from .weights import CheckpointError

    try:
        return Embedder.from_checkpoint(checkpoint, torch.bfloat16 if bf16 else torch.float32,
                                        _device_for(backend, device), backend)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        _fail(str(e))


@app.command()
def embed(
    files: Annotated[list[Path], typer.Argument(help="images, or .txt files (one text per non-empty line)")],
    checkpoint: Annotated[Path, typer.Option(help="a CLIP-style checkpoint folder with its tokenizer")],
    out: Annotated[Path, typer.Option(help="folder for embeddings.npy and index.jsonl")],
    batch_size: int = 32,
    truncate: Annotated[bool, typer.Option(help="cut texts longer than the context instead of failing them")] = False,
    bf16: Annotated[bool, BF16] = False,
    device: Annotated[str, DEVICE] = "auto",
    backend: Annotated[str, BACKEND] = "torch",
) -> None:
    """Embed files into embeddings.npy [N, E] plus index.jsonl saying what each row is.

    Unreadable files are reported by name and skipped; the exit code is 1 if any failed."""
    import numpy as np

    from .modalities.image import ImageReadError, load_image
    from .modalities.text import TruncationError

    if out.exists() and not out.is_dir():
        _fail(f"--out {out} exists and is not a folder")
    encoder = _load_encoder(checkpoint, bf16, device, backend)
    rows, vectors, failed = [], [], []
    images, texts = [], []
    for f in files:
        try:
            if f.suffix.lower() in TEXT_SUFFIXES:
                lines = [(i, t.strip()) for i, t in enumerate(f.read_text(encoding="utf-8").splitlines()) if t.strip()]
                texts += [({"file": str(f), "line": i + 1, "modality": "text", "text": t}, t) for i, t in lines]
            else:
                images.append(({"file": str(f), "modality": "image"}, load_image(f)))
        except (ImageReadError, OSError, UnicodeDecodeError) as e:
            failed.append(f"{f}: {e}")
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        vectors.append(encoder.embed_images([img for _, img in chunk]).numpy())
        rows += [meta for meta, _ in chunk]
    for meta, text in texts:  # one at a time so that one over-long text fails alone
        try:
            vectors.append(encoder.embed_texts([text], truncate=truncate).numpy())
            rows.append(meta)
        except (TruncationError, ValueError) as e:
            failed.append(f"{meta['file']}:{meta['line']}: {e}")
    out.mkdir(parents=True, exist_ok=True)
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, encoder.dim), np.float32)
    np.save(out / "embeddings.npy", matrix.astype(np.float32))
    with open(out / "index.jsonl", "w") as f:
        for i, meta in enumerate(rows):
            f.write(json.dumps({"row": i, **meta}) + "\n")
    console.print(f"wrote {len(rows)} embeddings of dim {matrix.shape[1]} to {out}")
    for line in failed:
        err.print(f"[red]failed:[/red] {line}")
    if failed:
        raise typer.Exit(1)


@app.command("zero-shot")
def zero_shot(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    checkpoint: Annotated[Path, typer.Option(help="a CLIP-style checkpoint folder with its tokenizer")],
    labels: Annotated[Optional[str], typer.Option(help="comma-separated class names")] = None,
    labels_file: Annotated[Optional[Path], typer.Option(help="one class name per line")] = None,
    template: Annotated[Optional[list[str]], typer.Option(help="prompt template(s) with {} (repeatable)")] = None,
    top_k: int = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines instead of a table")] = False,
    bf16: Annotated[bool, BF16] = False,
    device: Annotated[str, DEVICE] = "auto",
    backend: Annotated[str, BACKEND] = "torch",
) -> None:
    """Rank class names for each image. Unreadable images are reported and the rest still ranked."""
    from .modalities.image import ImageReadError, load_image
    from .tasks import ZeroShotClassifier
    from .tasks.zero_shot import DEFAULT_TEMPLATES

    names = [x.strip() for x in labels.split(",")] if labels else []
    if labels_file:
        if not labels_file.is_file():
            _fail(f"labels file not found: {labels_file}")
        names += [x.strip() for x in labels_file.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if not names:
        _fail("give class names with --labels or --labels-file")
    encoder = _load_encoder(checkpoint, bf16, device, backend)
    try:
        classifier = ZeroShotClassifier(encoder, names, tuple(template) if template else DEFAULT_TEMPLATES)
    except ValueError as e:
        _fail(str(e))
    failed = []
    table = Table(title="zero-shot")
    table.add_column("image", overflow="fold")
    for k in range(min(top_k, len(names))):
        table.add_column(f"#{k + 1}")
    for path in images:
        try:
            img = load_image(path)
        except ImageReadError as e:
            failed.append(str(e))
            continue
        ranked = classifier.rank([img], top_k)[0]
        if as_json:
            print(json.dumps({"image": str(path), "labels": [{"label": c, "p": round(p, 4)} for c, p in ranked]}))
        else:
            table.add_row(str(path), *[f"{c} ({p:.0%})" for c, p in ranked])
    if not as_json:
        console.print(table)
    for line in failed:
        err.print(f"[red]failed:[/red] {line}")
    if failed:
        raise typer.Exit(1)


@app.command()
def regions(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    boxes: Annotated[Path, typer.Option(help='JSON: {"image file name": [[x0, y0, x1, y1], ...], ...} in pixels')],
    checkpoint: Annotated[Path, typer.Option(help="a model folder whose image tower reads the regions (CLIP or ImageBind)")],
    out: Annotated[Path, typer.Option(help="folder for one NAME.npz per image (boxes, features, image_w, image_h)")],
) -> None:
    """Region features without a detector: RoI-align over the image tower's patch grid for each box.
    Writes what ``polymodal.data.regions.read_npz`` reads; bad images or boxes are reported, the rest
    are written, and the exit code is 1 if any failed."""
    import numpy as np
    import torch

    from .modalities.image import ImageReadError, load_image
    from .tasks.region_extractor import RegionExtractor

    if out.exists() and not out.is_dir():
        _fail(f"--out {out} exists and is not a folder")
    try:
        table = json.loads(boxes.read_text())
        if not isinstance(table, dict):
            raise ValueError("expected an object mapping image file names to lists of boxes")
    except (OSError, ValueError) as e:
        _fail(f"{boxes}: {e}")
    encoder = _load_encoder(checkpoint, device="cpu")  # the extractor reads the tower's patch grid on the CPU
    tower = encoder.model.visual if hasattr(encoder.model, "visual") else encoder.model.encoders["image"]
    extractor = RegionExtractor(tower, encoder.transform)
    out.mkdir(parents=True, exist_ok=True)
    failed, written = [], 0
    for path in images:
        try:
            if path.name not in table:
                raise ValueError(f"no boxes for {path.name} in {boxes}")
            box = torch.tensor(table[path.name], dtype=torch.float32)
            r = extractor(load_image(path), box.reshape(-1, 4) if box.numel() else box)
            np.savez(out / f"{path.stem}.npz", boxes=r.boxes.numpy(), features=r.features.numpy(),
                     image_w=r.image_w, image_h=r.image_h)
            written += 1
        except (ImageReadError, OSError, ValueError, TypeError, RuntimeError) as e:
            failed.append(f"{path}: {e}")
    console.print(f"wrote region features of {written} image(s) to {out}")
    for line in failed:
        err.print(f"[red]failed:[/red] {line}")
    if failed:
        raise typer.Exit(1)


@app.command()
def vqa(
    model: Annotated[Path, typer.Argument(help="a VQA model folder (train.out/model of an objective.kind=vqa run)")],
    image: Annotated[Path, typer.Argument(help="the picture")],
    question: Annotated[str, typer.Argument(help='e.g. "what colour is the square?"')],
    boxes: Annotated[Optional[Path], typer.Option(help="JSON list of [x0, y0, x1, y1] pixel boxes (default: a 2 × 2 grid)")] = None,
    region_tower: Annotated[Optional[Path], typer.Option(help="the image tower that read the training regions "
                                                               "(default: the one the folder records)")] = None,
    k: Annotated[int, typer.Option("-k", help="answers to show")] = 5,
) -> None:
    """Answer a question about a picture: the top answers with their scores."""
    from .modalities.image import ImageReadError, load_image
    from .modalities.text import TruncationError
    from .tasks.vqa import VQAPredictor
    from .weights import CheckpointError

    try:
        chosen = _read_boxes(boxes)
        predictor = VQAPredictor(model, region_tower)
        answers = predictor(load_image(image), question, chosen, k)
    except TruncationError as e:
        _fail(f"the question is too long for this model: {e}")
    except (ImageReadError, CheckpointError, ValueError, OSError) as e:
        _fail(str(e))
    table = Table("rank", "answer", "score")
    for rank, (answer, score) in enumerate(answers, 1):
        table.add_row(str(rank), answer, f"{score:.3f}")
    console.print(table)


@app.command()
def attention(
    model: Annotated[Path, typer.Argument(help="a VisualBERT model folder (a pretraining or VQA run's model)")],
    image: Annotated[Path, typer.Argument(help="the picture")],
    text: Annotated[str, typer.Argument(help='e.g. "a red circle left of a star"')],
    out: Annotated[Path, typer.Option(help="the PNG to write")] = Path("attention.png"),
    boxes: Annotated[Optional[Path], typer.Option(help="JSON list of [x0, y0, x1, y1] pixel boxes (default: a 2 × 2 grid)")] = None,
    region_tower: Annotated[Optional[Path], typer.Option(help="the image tower that read the training regions "
                                                               "(default: the one the folder records)")] = None,
) -> None:
    """Draw how each word attends to each region, per layer and head (word × region heat maps)."""
    from .modalities.image import ImageReadError, load_image
    from .modalities.text import TruncationError, load_tokenizer
    from .tasks.grounding import plot_word_region, word_region_map
    from .tasks.vqa import picture_regions
    from .tasks.region_tower import load_region_tower
    from .tasks.region_tower import region_extractor
    from .weights import CheckpointError, load_checkpoint

    try:
        net = load_checkpoint(model)
        net = getattr(net, "trunk", net).eval()
        if not hasattr(net, "forward_features") or not hasattr(net, "region_stem") or hasattr(net, "image_pooler"):
            raise ValueError(f"{model} holds a {type(net).__name__}; word × region maps need a single-stream "
                             "region model (VisualBERT)")
        tokenizer = load_tokenizer(model)
        extractor = region_extractor(str(region_tower or load_region_tower(model)["tower"]))
        regions = picture_regions(extractor, load_image(image), _read_boxes(boxes))
        words, att = word_region_map(net, tokenizer, regions, text)
    except TruncationError as e:
        _fail(f"the text is too long for this model: {e}")
    except (ImageReadError, CheckpointError, ValueError, OSError) as e:
        _fail(str(e))
    plot_word_region(words, att, out, f"{image.name}: {text}")
    console.print(f"wrote {out} ({att.shape[0]} layers × {att.shape[1]} heads, {len(words)} tokens × "
                  f"{att.shape[-1]} regions)", highlight=False)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context, config: Path, device: Annotated[Optional[str], DEVICE] = None) -> None:
    """Train from a YAML config; extra arguments are key=value overrides (e.g. train.steps=200).
    Resumes when train.out already holds a checkpoint. --device X is train.device=X."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .train.config import ConfigError, load_config
    from .eval.tables import metrics_table
    from .train.trainer import TrainingError, run

    try:
        cfg = load_config(config, _with_device(ctx.args, device))
    except ConfigError as e:
        _fail(str(e))
    with Progress(TextColumn("step {task.completed}/{task.total}"), BarColumn(),
                  TextColumn("loss {task.fields[loss]:.3f}  {task.fields[rate]:.0f} samples/s"),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("train", total=cfg.train.steps, loss=float("nan"), rate=0.0)
        try:
            result = run(cfg, progress=lambda r: bar.update(task, completed=r["step"], loss=r["loss"],
                                                            rate=r["samples_per_s"]))
        except (ConfigError, TrainingError) as e:
            _fail(str(e))
    console.print(metrics_table(result, f"{cfg.train.out} (full values: eval.json)"))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bind(ctx: typer.Context, config: Path, device: Annotated[Optional[str], DEVICE] = None) -> None:
    """ImageBind's two-stage recipe: stage 1 CLIP (image + text), stage 2 binds audio, depth, thermal
    and IMU encoders to the frozen image space; reports emergent zero-shot against a supervised
    upper bound, retrieval and embedding arithmetic. Extra arguments are key=value overrides."""
    from .train.config import BindConfig, ConfigError, load_config
    from .world.recipes.imagebind import run_recipe
    from .train.trainer import TrainingError

    try:
        cfg = load_config(config, _with_device(ctx.args, device), cls=BindConfig)
        results = run_recipe(cfg, report=lambda line: console.print(line, highlight=False))
    except (ConfigError, TrainingError) as e:
        _fail(str(e))
    typer.echo((Path(cfg.out) / "results.md").read_text())  # plain: a Markdown table must not wrap
    console.print(f"bound model: {Path(cfg.out) / 'model'}  results: {Path(cfg.out) / 'results.json'}")
    del results


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

    from .tasks import Embedder
    from .search.ingest import index_folder
    from .search.store import IndexError_, Store
    from .weights import trust_torchscript as allowing

    try:
        with allowing(trust_torchscript):
            embedder = Embedder.from_checkpoint(model, device=_device_for(backend, device), backend=backend)
        store = Store(out, embedder.dim, embedder.model_id, str(model.resolve()), "hnsw" if approximate else "flat")
        with Progress(console=console) as bar:
            task = bar.add_task("embedding", total=None)
            report = index_folder(folder, embedder, store, batch,
                                  progress=lambda done, total: bar.update(task, completed=done, total=total),
                                  on_wait=lambda who: err.print(f"[yellow]{who}[/yellow]", highlight=False))
    except (IndexError_, ValueError, NotADirectoryError) as e:
        _fail(str(e))
    for path, error in report.failed:
        err.print(f"[yellow]skipped[/yellow] {error if path in error else f'{path}: {error}'}")
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
    from .search.detect import UnsupportedFile
    from .search.query import embedder_for
    from .search.query import query_vector
    from .search.store import IndexError_, Store

    try:
        store = Store(index_dir)
        embedder = embedder_for(store, model, trust_torchscript, _device_for(backend, device), backend)
        files = [f for f in (image, audio, file) if f is not None]
        vector = query_vector(embedder, text, files, plus or [], minus or [])
        wanted = set(modality.split(",")) if modality else None
        results = store.search(vector, k, wanted)
    except (IndexError_, UnsupportedFile, ValueError, OSError) as e:
        _fail(str(e))
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
    import ipaddress
    import secrets

    import uvicorn

    from .search.store import IndexError_
    from .server.app import LOOPBACK_NAMES, create_app

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if no_token and token:
        _fail("give --token or --no-token, not both")
    if no_token and not loopback:
        _fail(f"refusing to serve {host} without a token: anyone who can reach it could read the index; "
              "drop --no-token (a random token is made) or bind to 127.0.0.1")
    token = None if no_token else token or secrets.token_urlsafe(24)
    hosts = allowed_host or (LOOPBACK_NAMES if loopback else [host])
    try:
        app = create_app(index_dir, model, token, max_upload_mb, timeout, allowed_hosts=hosts,
                         trust_torchscript=trust_torchscript, device=_device_for(backend, device), backend=backend)
    except (IndexError_, ValueError) as e:
        _fail(str(e))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    fragment = f"#token={token}" if token else ""
    console.print(f"serving {index_dir} at http://{shown}:{port}/{fragment}", highlight=False, soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="a checkpoint file or folder in any supported layout")],
    out: Annotated[Path, typer.Argument(help="folder for model.safetensors + config.json")],
    trust_torchscript: Annotated[bool, typer.Option(help="allow a TorchScript archive (it holds code)")] = False,
) -> None:
    """Convert a checkpoint to polymodal's own format (safetensors + config.json), once: e.g. an
    OpenAI CLIP TorchScript .pt, so that it never has to be loaded as code again."""
    from .weights import CheckpointError, load_checkpoint, save
    from .weights import trust_torchscript as allowing

    try:
        with allowing(trust_torchscript):
            model = load_checkpoint(source)
    except (CheckpointError, ValueError, OSError) as e:
        _fail(str(e))
    save(model, out)
    console.print(f"wrote {out / 'model.safetensors'} and {out / 'config.json'}", highlight=False)


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="a model folder or checkpoint file in any supported layout")],
    format: Annotated[str, typer.Option("--format", help="onnx or openvino (one file per embedding tower), "
                                                         "hf (a transformers CLIPModel folder) or open_clip")],
    out: Annotated[Path, typer.Option(help="the folder to write (usable on its own)")],
    tolerance: Annotated[float, typer.Option(help="largest |Δ| allowed between the export and the model")] = 1e-4,
) -> None:
    """Export a model to take elsewhere, verified: every tower is run on fresh inputs against the model
    and the max |Δ| printed; a difference above --tolerance is an error."""
    from .export.folder import export_model
    from .export.onnx import ExportError
    from .weights import CheckpointError

    try:
        diffs = export_model(model, format, out, tolerance)
    except (ExportError, CheckpointError, ValueError, OSError) as e:
        _fail(str(e))
    for modality, diff in diffs.items():
        console.print(f"{modality:8s} max |Δ| vs the model {diff:.2e}", highlight=False)
    console.print(f"wrote {format} export of {model} to {out}", highlight=False)


@app.command()
def pipeline(out: Annotated[Path, typer.Option(help="folder for everything the run makes")] = Path("runs/pipeline")) -> None:
    """The whole pipeline on the world: CLIP stage, ImageBind binding stage, evaluation report with
    plots, held-out files indexed; ends with the command that serves the search UI."""
    from .world.recipes.pipeline import run_pipeline

    run_pipeline(out, report=lambda line: console.print(line, highlight=False))


@app.command("eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def evaluate_cmd(
    ctx: typer.Context,
    config: Path,
    checkpoint: Annotated[Path, typer.Option(help="a saved model folder with its tokenizer (RUN/model)")],
    device: Annotated[Optional[str], DEVICE] = None,
) -> None:
    """Evaluate a saved model on its config's validation data, as its objective.kind does at the end of
    training (CLIP: retrieval R@1/5/10, mean rank, zero-shot accuracy; VQA: accuracy and baselines; …);
    prints a table and writes eval.json + eval.md beside the checkpoint. The model runs on the config's
    train.device (auto: a CUDA GPU when present)."""
    from .devices import DeviceError, host_io, resolve
    from .modalities.text import load_tokenizer
    from .train.config import ConfigError, load_config
    from .eval.tables import metrics_table
    from .train.kinds import make_kind
    from .weights import CheckpointError, load_checkpoint

    try:
        cfg = load_config(config, _with_device(ctx.args, device))
        model = load_checkpoint(checkpoint).to(resolve(cfg.train.device))
        tokenizer = load_tokenizer(checkpoint)
    except (ConfigError, CheckpointError, FileNotFoundError, DeviceError) as e:
        _fail(str(e))
    try:
        kind = make_kind(cfg)
        result = kind.evaluate_saved(host_io(model), checkpoint, tokenizer)
    except (ConfigError, ValueError) as e:
        _fail(str(e))
    (checkpoint / "eval.json").write_text(json.dumps(result, indent=1))
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in result.items())
    (checkpoint / "eval.md").write_text(f"| metric | value |\n|---|---|\n{rows}\n")
    console.print(metrics_table(result, f"{checkpoint} (full values: eval.json)"))


@app.command()
def plot(run_dir: Path, out: Annotated[Optional[Path], typer.Option(help="PNG path (default RUN_DIR/curves.png)")] = None) -> None:
    """Draw a run's curves (loss, learning rate, temperature, validation metrics) as a PNG."""
    from .train.plot import plot_run

    try:
        console.print(f"wrote {plot_run(run_dir, out)}")
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))


world_app = typer.Typer(no_args_is_help=True, help="The synthetic multimodal world: export shards, preview.")
app.add_typer(world_app, name="world")


@world_app.command("export")
def world_export(
    out: Annotated[Path, typer.Option(help="output folder for the .tar shards and the COCO captions JSON")],
    split: str = "train",
    n: Annotated[int, typer.Option(help="number of samples")] = 1000,
    seed: int = 0,
    modalities: Annotated[str, typer.Option(help="comma-separated")] = "image,caption",
    image_size: int = 64,
    shard_size: int = 1000,
    frames: int = 8,
) -> None:
    """Write world samples as WebDataset shards (.png .json .wav .npy .mp4) + captions_SPLIT.json."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .world.dataset import check_options
    from .world.export import export

    names = tuple(m.strip() for m in modalities.split(",") if m.strip())
    try:  # every option is checked before any sample is made
        check_options(split, n, names, image_size)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} exists and is a file")
        if shard_size <= 0 or not 2 <= frames <= 64:
            raise ValueError("--shard-size must be positive and --frames between 2 and 64")
    except ValueError as e:
        _fail(str(e))
    with Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console) as bar:
        task = bar.add_task("export", total=n)
        paths = export(out, split, n, seed, names, image_size, shard_size, frames,
                       progress=lambda k: bar.advance(task, k))
    console.print(f"wrote {len(paths)} shard(s) of {split} to {out}")


@world_app.command("howto")
def world_howto(
    out: Annotated[Path, typer.Option(help="folder for videos/*.mp4, narration.csv and steps.csv (created)")],
    split: str = "val",
    n: Annotated[int, typer.Option(help="number of videos")] = 20,
    seed: int = 0,
    shift_rate: Annotated[float, typer.Option(help="share of narration segments shifted 1–2.5 s")] = 0.25,
    size: int = 64,
) -> None:
    """Write the world's narrated how-to videos as .mp4 files with their transcript (video,start,end,text)
    and true step times: data in the layout of HowTo100M / YouCook2 captions."""
    from .world.export import export_howto

    if not 1 <= n <= 100_000 or not 0.0 <= shift_rate <= 1.0 or not 32 <= size <= 512:
        _fail("--n must be 1–100000, --shift-rate 0–1 and --size 32–512")
    if split not in ("train", "val", "test"):
        _fail(f"--split must be train, val or test, got {split!r}")
    paths = export_howto(out, split, n, seed, shift_rate, size)
    console.print(f"wrote {len(paths)} videos, narration.csv and steps.csv to {out}")


@world_app.command("files")
def world_files(
    out: Annotated[Path, typer.Option(help="folder for the files (created)")],
    split: str = "test",
    n: Annotated[int, typer.Option(help="number of scenes")] = 100,
    seed: int = 0,
    image_size: int = 64,
    modalities: Annotated[str, typer.Option(help="comma-separated")] = "image,audio,video,caption,depth,thermal,imu",
    labels: Annotated[Optional[Path], typer.Option(help="also write each scene's labels to this JSONL file")] = None,
) -> None:
    """Write world scenes as ordinary files (.png .wav .mp4 .txt *_depth.npy *_thermal.npy *_imu.npy)
    — a folder to try `polymodal index` on."""
    from .world.files import write_files

    names = tuple(m.strip() for m in modalities.split(",") if m.strip())
    try:
        with console.status(f"writing {n} scenes"):
            write_files(out, split, n, seed, image_size, names, labels=labels)
    except ValueError as e:
        _fail(str(e))
    console.print(f"wrote {n} {split} scenes to {out}")


@world_app.command("documents")
def world_documents_cmd(
    out: Annotated[Path, typer.Argument(help="folder to write (created)")],
    split: Annotated[str, typer.Option(help="train, val or test")] = "test",
    n: Annotated[int, typer.Option(help="documents")] = 20,
    seed: Annotated[int, typer.Option()] = 0,
    pdf: Annotated[bool, typer.Option(help="also each page as an image-only PDF (pdf/NAME.pdf)")] = False,
) -> None:
    """The world's documents as FUNSD (images/ + annotations/), DocVQA (docvqa.json) and class
    folders (classes/CLASS/), with ground-truth words, entities, links, QA pairs and classes."""
    from .world.document_files import write_documents
    from .world.scene import SPLITS

    if split not in SPLITS or not 1 <= n <= 100_000:
        _fail(f"--split must be one of {SPLITS} and --n 1–100000")
    write_documents(out, split, n, seed, pdf)
    console.print(f"{n} documents → {out}")


@world_app.command("preview")
def world_preview(
    out: Annotated[Path, typer.Option(help="PNG file to write")] = Path("world-preview.png"),
    split: str = "val",
    samples: int = 4,
    seed: int = 0,
) -> None:
    """Draw a contact sheet: every modality of a few samples side by side."""
    from .world.preview import contact_sheet
    from .world.scene import SPLITS

    if split not in SPLITS or samples <= 0:
        _fail(f"--split must be one of {SPLITS} and --samples positive")
    if out.is_dir():
        _fail(f"--out {out} is a folder; give a .png file name")
    console.print(f"wrote {contact_sheet(out, split, tuple(range(samples)), seed)}")


if __name__ == "__main__":
    app()


video_app = typer.Typer(no_args_is_help=True, help="Videos: per-second features for VideoCLIP.")
app.add_typer(video_app, name="video")


@video_app.command("features")
def video_features_cmd(
    videos: Annotated[list[Path], typer.Argument(help="video files (.mp4, .webm, .mkv, …)")],
    out: Annotated[Path, typer.Option(help="folder for one VIDEO_NAME.npy (seconds × dim) per video")],
    backbone: Annotated[str, typer.Option(help="s3d (MIL-NCE S3D-G, 512-d) or clip (a polymodal image tower)")] = "s3d",
    weights: Annotated[Optional[Path], typer.Option(help="s3d: s3d_howto100m.pth or a folder; clip: a model folder")] = None,
    fps: Annotated[Optional[int], typer.Option(help="frames per second fed to the backbone (s3d: 30, clip: 2)")] = None,
    size: Annotated[Optional[int], typer.Option(help="s3d: frame size after resize + centre crop (224)")] = None,
    batch: Annotated[int, typer.Option(help="seconds per backbone call")] = 8,
    max_minutes: Annotated[float, typer.Option(help="refuse videos longer than this")] = 180.0,
    bf16: Annotated[bool, typer.Option(help="s3d: bf16 weights, ≈ 1.8× faster on CPUs with AVX512-BF16/AMX "
                                                "but approximate (see docs/benchmarks.md)")] = False,
) -> None:
    """One feature vector per second of each video (MMPT's layout: OUT/NAME.npy, seconds × dim).
    Existing files are skipped, so a stopped run resumes; a bad video is reported and skipped."""
    from .tasks.video_features import extract_folder, image_tower_backbone, s3d_backbone
    from .weights import CheckpointError, load_checkpoint

    if weights is None:
        _fail("--weights is required: polymodal downloads nothing (s3d: the official s3d_howto100m.pth)")
    if (fps is not None and not 1 <= fps <= 60) or (size is not None and not 16 <= size <= 1024) or batch < 1 \
            or not 0 < max_minutes <= 24 * 60:
        _fail("--fps must be 1–60, --size 16–1024, --batch ≥ 1 and --max-minutes 0–1440")
    try:
        if backbone == "s3d":
            model = load_checkpoint(weights)
            if type(model).__name__ != "S3D":
                raise CheckpointError(f"{weights} holds a {type(model).__name__}, not an S3D")
            chosen = s3d_backbone(model, fps or 30, size or 224, bf16=bf16)
            chosen.weights = str(weights.resolve())
        elif backbone == "clip":
            from .tasks.embedder import Embedder

            chosen = image_tower_backbone(Embedder.from_checkpoint(weights), fps or 2)
        else:
            raise ValueError(f"--backbone must be s3d or clip, got {backbone!r}")
        counts = extract_folder(list(videos), out, chosen, report=lambda line: console.print(line, highlight=False),
                                batch=batch, max_seconds=max_minutes * 60)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        _fail(str(e))
    console.print(f"{counts['done']} written, {counts['skipped']} already there, {counts['failed']} failed → {out}")
    if counts["failed"] and not counts["done"] and not counts["skipped"]:
        raise typer.Exit(1)


def _videoclip(model: Path, s3d: Optional[Path], need_backbone: bool = True):
    """(embedder with its video clipper, or None when the folder names no frame backbone and no --s3d is given)."""
    from .tasks.embedder import Embedder
    from .tasks.embedder import frame_backbone
    from .tasks.video_search import VideoClipper
    from .weights import CheckpointError

    embedder = Embedder.from_checkpoint(model)
    if type(embedder.model).__name__ != "VideoCLIP":
        raise CheckpointError(f"{model} holds a {type(embedder.model).__name__}, not a VideoCLIP")
    if s3d is not None:
        embedder.video_clips = VideoClipper(embedder.model, frame_backbone(model, s3d))
    if need_backbone and embedder.video_clips is None:
        frame_backbone(model)  # raises, saying what is missing
    return embedder


@video_app.command("localize")
def video_localize_cmd(
    model: Annotated[Path, typer.Argument(help="a VideoCLIP model folder (with its tokenizer)")],
    video: Annotated[Path, typer.Argument(help="a video file, or its per-second features (.npy from polymodal video features)")],
    steps: Annotated[Path, typer.Option(help="a text file, one step per line")],
    out: Annotated[Path, typer.Option(help="the timeline PNG to write")] = Path("timeline.png"),
    window: Annotated[int, typer.Option(help="seconds of video scored around each second")] = 3,
    s3d: Annotated[Optional[Path], typer.Option(help="S3D weights (s3d_howto100m.pth) for an MMPT model's features")] = None,
) -> None:
    """Where in the video does each step happen? Prints each step's best second and writes a
    timeline PNG of the per-second scores. A video file is decoded and turned into features with the
    model's frame backbone (frame_tower.json beside a polymodal model, or --s3d)."""
    import numpy as np
    import torch

    from .modalities.video import VideoReadError
    from .tasks.localize import plot_timeline, step_scores
    from .weights import CheckpointError

    try:
        embedder = _videoclip(model, s3d, need_backbone=video.suffix != ".npy")
        net = embedder.model
        texts = [line.strip() for line in steps.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not texts:
            raise ValueError(f"{steps} has no steps (one per line)")
        if video.suffix == ".npy":
            feats = torch.from_numpy(np.load(video, allow_pickle=False)).float()
        else:
            feats = embedder.video_clips.features(video).float()
        if feats.dim() != 2 or feats.shape[1] != net.config.input_dim:
            raise ValueError(f"{video}: expected [seconds, {net.config.input_dim}] features, got {tuple(feats.shape)}")
        scores = step_scores(net, feats, texts, embedder.tokenizer, window)
    except (CheckpointError, VideoReadError, ValueError, OSError) as e:
        _fail(str(e))
    for text, column in zip(texts, scores.T):
        console.print(f"{int(column.argmax())} s  {text}", highlight=False)
    console.print(f"wrote {plot_timeline(scores, texts, out)}")


@video_app.command("search")
def video_search_cmd(
    model: Annotated[Path, typer.Argument(help="a VideoCLIP model folder (with its tokenizer)")],
    folder: Annotated[Path, typer.Argument(help="the folder of videos to search (indexed on first use, then updated)")],
    query: Annotated[str, typer.Argument(help="what happens, in words")],
    k: Annotated[int, typer.Option("-k", help="number of clips")] = 10,
    index: Annotated[Optional[Path], typer.Option(help="the index folder (default FOLDER/.polymodal-video-index)")] = None,
    s3d: Annotated[Optional[Path], typer.Option(help="S3D weights (s3d_howto100m.pth) for an MMPT model's features")] = None,
) -> None:
    """Find the moments of FOLDER's videos that show QUERY: ranked clips with their start–end times.
    The videos are indexed as clips (4 s, every 2 s) the first time and updated on later calls."""
    from .modalities.video import VideoReadError
    from .search.ingest import index_folder
    from .search.query import query_vector
    from .search.store import IndexError_, Store
    from .tasks.video_search import CLIP
    from .weights import CheckpointError

    try:
        embedder = _videoclip(model, s3d)
        store = Store(index or folder / ".polymodal-video-index", embedder.dim, embedder.model_id,
                      str(model.resolve()), "flat")
        report = index_folder(folder, embedder, store)
        results = store.search(query_vector(embedder, query), k, {"video"})
    except (CheckpointError, IndexError_, VideoReadError, ValueError, NotADirectoryError, OSError) as e:
        _fail(str(e))
    for path, error in report.failed:
        err.print(f"[yellow]skipped[/yellow] {error if path in error else f'{path}: {error}'}")
    root = folder.resolve()
    for rank, (item, score) in enumerate(results, 1):  # one plain line per clip: easy to read and to pipe
        start, end = (float(t) for t in item.path.rsplit(CLIP, 1)[1].split(","))
        name = Path(item.file).relative_to(root) if Path(item.file).is_relative_to(root) else item.file
        console.print(f"{rank:>3}  {score:.3f}  {start:>6g}–{end:g} s  {name}", highlight=False, markup=False,
                      soft_wrap=True)


doc_app = typer.Typer(no_args_is_help=True, help="Documents: OCR, key–value extraction, questions, classes (LayoutLM).")
app.add_typer(doc_app, name="doc")


@doc_app.command("ocr")
def doc_ocr_cmd(
    files: Annotated[list[Path], typer.Argument(help="PDFs or page images (PNG, JPEG, multi-page TIFF)")],
    out: Annotated[Optional[Path], typer.Option(help="a .json file (one input) or a folder (NAME.json per input); "
                                                      "default: print JSON")] = None,
    engine: Annotated[str, typer.Option("--ocr", help="OCR engine: tesseract or rapidocr")] = "tesseract",
    lang: Annotated[str, typer.Option(help="Tesseract language(s), e.g. eng or eng+deu")] = "eng",
    psm: Annotated[int, typer.Option(help="Tesseract page-segmentation mode (3 automatic, 6 one block, 11 sparse)")] = 3,
    dpi: Annotated[float, typer.Option(help="PDF rendering resolution")] = 150,
    text_layer: Annotated[bool, typer.Option(help="use a PDF page's own text when it has some")] = True,
    max_pages: Annotated[int, typer.Option(help="pages read per file")] = 200,
) -> None:
    """Words, boxes (pixels of the page at --dpi), confidences, line and block ids, per page. A bad
    file is reported and the others are still read."""
    from .documents import DocumentReadError, OCRError, ocr_engine, read_document

    if not 36 <= dpi <= 600 or max_pages < 1:
        _fail("--dpi must be 36–600 and --max-pages ≥ 1")
    if out is not None and len(files) > 1 and out.suffix == ".json":
        _fail(f"{len(files)} inputs: --out must be a folder, not {out}")
    try:
        ocr = ocr_engine(engine, **_ocr_options(lang, psm))
    except (OCRError, ValueError) as e:
        _fail(str(e))
    failed = 0
    for file in files:
        try:
            pages = read_document(file, ocr=ocr, dpi=dpi, max_pages=max_pages, text_layer=text_layer)
        except (DocumentReadError, OCRError) as e:
            err.print(f"[red]skipped[/red] {e}", highlight=False)
            failed += 1
            continue
        result = json.dumps({"file": str(file), "pages": [p.to_json() for p in pages]}, ensure_ascii=False)
        if out is None:
            print(result)
            continue
        target = out if out.suffix == ".json" else out / f"{file.stem}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result)
        words = sum(len(p.words) for p in pages)
        console.print(f"{file}: {len(pages)} page(s), {words} words → {target}", highlight=False)
    if failed == len(files):
        raise typer.Exit(1)


def _doc_pages(file: Path, engine: str, lang: str, psm: int, dpi: float):
    from .documents import ocr_engine, read_document

    return read_document(file, ocr=ocr_engine(engine, **_ocr_options(lang, psm)), dpi=dpi)


def _ocr_options(lang: str, psm: int) -> dict:
    """The Tesseract options the user changed from their defaults (another engine refuses them by name)."""
    return {name: value for name, value, default in (("lang", lang, "eng"), ("psm", psm, 3)) if value != default}


OCR_OPTION = Annotated[str, typer.Option("--ocr", help="OCR engine for pages without a text layer: tesseract or rapidocr")]
LANG_OPTION = Annotated[str, typer.Option(help="Tesseract language(s)")]
PSM_OPTION = Annotated[int, typer.Option(help="Tesseract page-segmentation mode")]
DPI_OPTION = Annotated[float, typer.Option(help="PDF rendering resolution")]


def _document_model(folder: Path, task: str):
    from .tasks.documents import DocumentModel

    try:
        model = DocumentModel.from_folder(folder)
        model.require(task)
    except (FileNotFoundError, TypeError, ValueError) as e:
        _fail(str(e))
    return model


@doc_app.command("extract")
def doc_extract_cmd(
    model: Annotated[Path, typer.Argument(help="a model folder trained with objective.kind doc_entities")],
    file: Annotated[Path, typer.Argument(help="a PDF or page image")],
    out: Annotated[Optional[Path], typer.Option(help="write the JSON here (default: print it)")] = None,
    draw: Annotated[Optional[Path], typer.Option(help="PNG with the entities and links over the page "
                                                       "(NAME-pN.png per page for several pages)")] = None,
    engine: OCR_OPTION = "tesseract", lang: LANG_OPTION = "eng", psm: PSM_OPTION = 3, dpi: DPI_OPTION = 150,
) -> None:
    """Key–value pairs of each page: ``fields`` (key, value, their boxes, confidence), and every
    entity (header / question / answer) with the links the model found."""
    from .documents import DocumentReadError, OCRError
    from .documents.draw import draw_entities
    from .tasks.documents import DocumentPage

    doc_model = _document_model(model, "entities")
    try:
        pages = _doc_pages(file, engine, lang, psm, dpi)
    except (DocumentReadError, OCRError, ValueError) as e:
        _fail(str(e))
    result = {"file": str(file), "pages": []}
    for page in pages:
        found = doc_model.extract(DocumentPage.of(page))
        by_id = {e["id"]: e for e in found["entities"]}
        fields = [{"key": by_id[link["question"]]["text"], "value": by_id[link["answer"]]["text"],
                   "key_box": by_id[link["question"]]["box"], "value_box": by_id[link["answer"]]["box"],
                   "confidence": round(link["score"] * min(by_id[link["question"]]["confidence"],
                                                           by_id[link["answer"]]["confidence"]), 4)}
                  for link in found["links"]]
        result["pages"].append({"page": page.number, "width": page.width, "height": page.height, "source": page.source,
                                "fields": fields, "entities": found["entities"], "links": found["links"]})
        if draw is not None:
            target = draw if len(pages) == 1 else draw.with_name(f"{draw.stem}-p{page.number}{draw.suffix or '.png'}")
            draw_entities(page.image, found["entities"], found["links"], target)
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if out is None:
        print(text)
    else:
        out.write_text(text)
        console.print(f"{sum(len(p['fields']) for p in result['pages'])} field(s) → {out}", highlight=False)


@doc_app.command("ask")
def doc_ask_cmd(
    model: Annotated[Path, typer.Argument(help="a model folder trained with objective.kind doc_qa")],
    file: Annotated[Path, typer.Argument(help="a PDF or page image")],
    question: Annotated[str, typer.Argument(help='e.g. "what is the total?"')],
    engine: OCR_OPTION = "tesseract", lang: LANG_OPTION = "eng", psm: PSM_OPTION = 3, dpi: DPI_OPTION = 150,
) -> None:
    """The answer (words of the page), its score and where it is: page and pixel box (JSON)."""
    from .documents import DocumentReadError, OCRError
    from .tasks.documents import DocumentPage

    doc_model = _document_model(model, "qa")
    if not question.strip():
        _fail("the question is empty")
    try:
        pages = _doc_pages(file, engine, lang, psm, dpi)
    except (DocumentReadError, OCRError, ValueError) as e:
        _fail(str(e))
    answers = [{**doc_model.ask(DocumentPage.of(p), question), "page": p.number} for p in pages]
    best = max(answers, key=lambda a: a["score"])
    print(json.dumps({"file": str(file), "question": question, **best}, ensure_ascii=False))


@doc_app.command("classify")
def doc_classify_cmd(
    model: Annotated[Path, typer.Argument(help="a model folder trained with objective.kind doc_classify")],
    inputs: Annotated[list[Path], typer.Argument(help="folders (searched recursively) or files")],
    engine: OCR_OPTION = "tesseract", lang: LANG_OPTION = "eng", psm: PSM_OPTION = 3, dpi: DPI_OPTION = 150,
) -> None:
    """One line per file: path, class, score (class probabilities averaged over its pages). A bad
    file gets an error line and the others go on."""
    from .documents import DocumentReadError, OCRError
    from .documents.reader import IMAGE_SUFFIXES
    from .tasks.documents import DocumentPage

    doc_model = _document_model(model, "classify")
    files = []
    for item in inputs:
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in (*IMAGE_SUFFIXES, ".pdf"))
        elif item.is_file():
            files.append(item)
        else:
            _fail(f"{item}: no such file or folder")
    if not files:
        _fail("no PDFs or images found")
    failed = 0
    for file in files:
        try:
            pages = _doc_pages(file, engine, lang, psm, dpi)
        except (DocumentReadError, OCRError) as e:
            err.print(f"[red]skipped[/red] {e}", highlight=False)
            failed += 1
            continue
        scores = {}
        for p in pages:
            for c, v in doc_model.classify(DocumentPage.of(p))["scores"].items():
                scores[c] = scores.get(c, 0.0) + v / len(pages)
        best = max(scores, key=scores.get)
        print(f"{file}\t{best}\t{scores[best]:.3f}")
    if failed == len(files):
        raise typer.Exit(1)
