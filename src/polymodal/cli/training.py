"""``polymodal train | bind | pipeline | eval | plot``: runs from configs, the main job, a saved model's evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import DEVICE, app, console, fail, safe, with_device


def progress_lines(total: int, every_s: float = 30.0):
    """A progress callback for output that is not a terminal: one line ``step N/T loss … samples/s``
    at the first logged step, then at most every ``every_s`` seconds, and at the last step."""
    import sys
    import time

    last = [None]

    def report(record: dict) -> None:
        now = time.monotonic()
        if last[0] is None or now - last[0] >= every_s or record["step"] >= total:
            last[0] = now
            print(f"step {record['step']}/{total}  loss {record['loss']:.4f}  {record['samples_per_s']:.0f} samples/s",
                  file=sys.stdout, flush=True)

    return report


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context, config: Path, device: Annotated[Optional[str], DEVICE] = None) -> None:
    """Train from a YAML config; extra arguments are key=value overrides (e.g. train.steps=200).
    Resumes when train.out already holds a checkpoint. --device X is train.device=X."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..train.config import ConfigError, load_config
    from ..eval.tables import metrics_table
    from ..train.kinds import make_kind
    from ..train.trainer import TrainingError, run

    try:
        cfg = load_config(config, with_device(ctx.args, device))
        make_kind(cfg)  # the kind, its source and the data.* settings, checked before anything starts
    except ConfigError as e:
        fail(str(e))
    if not console.is_terminal:  # redirected to a file or a pipe: plain lines at a sane rate, not a live bar
        try:
            result = run(cfg, progress=progress_lines(cfg.train.steps))
        except (ConfigError, TrainingError) as e:
            fail(str(e))
        console.print(metrics_table(result, f"{safe(cfg.train.out)} (full values: eval.json)"))
        return
    with Progress(TextColumn("step {task.completed}/{task.total}"), BarColumn(),
                  TextColumn("loss {task.fields[loss]:.3f}  {task.fields[rate]:.0f} samples/s"),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("train", total=cfg.train.steps, loss=float("nan"), rate=0.0)
        try:
            result = run(cfg, progress=lambda r: bar.update(task, completed=r["step"], loss=r["loss"],
                                                            rate=r["samples_per_s"]))
        except (ConfigError, TrainingError) as e:
            fail(str(e))
    console.print(metrics_table(result, f"{cfg.train.out} (full values: eval.json)"))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bind(ctx: typer.Context, config: Path, device: Annotated[Optional[str], DEVICE] = None) -> None:
    """ImageBind's two-stage recipe: stage 1 CLIP (image + text), stage 2 binds audio, depth, thermal
    and IMU encoders to the frozen image space; reports emergent zero-shot against a supervised
    upper bound, retrieval and embedding arithmetic. Extra arguments are key=value overrides."""
    from ..train.config import BindConfig, ConfigError, load_config
    from ..world.recipes.imagebind import run_recipe
    from ..train.trainer import TrainingError

    try:
        cfg = load_config(config, with_device(ctx.args, device), cls=BindConfig)
        results = run_recipe(cfg, report=lambda line: console.print(line, highlight=False))
    except (ConfigError, TrainingError) as e:
        fail(str(e))
    typer.echo((Path(cfg.out) / "results.md").read_text())  # plain: a Markdown table must not wrap
    console.print(f"bound model: {Path(cfg.out) / 'model'}  results: {Path(cfg.out) / 'results.json'}")
    del results


@app.command()
def pipeline(out: Annotated[Path, typer.Option(help="folder for everything the run makes")] = Path("runs/pipeline")) -> None:
    """The whole pipeline on the world: CLIP stage, ImageBind binding stage, evaluation report with
    plots, held-out files indexed; ends with the command that serves the search UI."""
    from ..world.recipes.pipeline import run_pipeline

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
    from ..devices import DeviceError, host_io, resolve
    from ..modalities.text import load_tokenizer
    from ..train.config import ConfigError, load_config
    from ..eval.tables import metrics_table
    from ..train.kinds import make_kind
    from ..weights import CheckpointError, load_checkpoint

    try:
        cfg = load_config(config, with_device(ctx.args, device))
        model = load_checkpoint(checkpoint).to(resolve(cfg.train.device))
        tokenizer = load_tokenizer(checkpoint)
    except (ConfigError, CheckpointError, FileNotFoundError, DeviceError) as e:
        fail(str(e))
    try:
        kind = make_kind(cfg)
        result = kind.evaluate_saved(host_io(model), checkpoint, tokenizer)
    except (ConfigError, ValueError) as e:
        fail(str(e))
    (checkpoint / "eval.json").write_text(json.dumps(result, indent=1))
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in result.items())
    (checkpoint / "eval.md").write_text(f"| metric | value |\n|---|---|\n{rows}\n")
    console.print(metrics_table(result, f"{checkpoint} (full values: eval.json)"))


@app.command()
def plot(run_dir: Path, out: Annotated[Optional[Path], typer.Option(help="PNG path (default RUN_DIR/curves.png)")] = None) -> None:
    """Draw a run's curves (loss, learning rate, temperature, validation metrics) as a PNG."""
    from ..train.plot import plot_run

    try:
        console.print(f"wrote {plot_run(run_dir, out)}")
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))


@app.command()
def sources() -> None:
    """List the data sources (data.kind), the examples each gives and the data.* settings it reads."""
    from rich.table import Table

    from ..train.sources import all_sources

    table = Table(title="data sources (data.kind)")
    for col in ("data.kind", "gives", "reads data.*", "what"):
        table.add_column(col, overflow="fold")
    for s in all_sources():
        table.add_row(s.name, s.examples.replace("_", " "), ", ".join(s.reads), s.about)
    console.print(table)
