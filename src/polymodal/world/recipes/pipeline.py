"""The whole pipeline on the synthetic world, on a CPU (``polymodal pipeline``):

1. stage 1 — CLIP: a 64 px image tower against the frozen all-MiniLM-L6-v2 text tower;
2. stage 2 — ImageBind: audio, depth, thermal and IMU encoders bound to the frozen image space;
3. evaluation — retrieval, zero-shot, emergent cross-modal zero-shot and arithmetic;
4. a report (Markdown + HTML) with PNG plots: training curves, a retrieval example grid and a
   cross-modal similarity matrix;
5. held-out world scenes written as ordinary files, with a few world documents as scanned PDFs,
   and indexed (vectors, and words: captions, OCR of the scans);
6. a document QA model (LayoutLMv2) trained on world documents; the run ends with one hybrid query
   and one question asked of the folder's documents, and the command that serves the search UI.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch


@dataclass
class PipelineSizes:
    clip_scenes: int = 1500
    clip_steps: int = 250
    bind_scenes: int = 1200
    bind_test: int = 300
    bind_steps: int = 120
    index_scenes: int = 100
    val_scenes: int = 300
    index_documents: int = 6  # scanned PDFs among the indexed files
    qa_documents: int = 1000
    qa_steps: int = 400


QUICK = PipelineSizes(64, 2, 48, 24, 3, 4, 32, 2, 16, 2)  # for tests: every stage runs, nothing is learned
QUERY = "a red circle on a beach"


def run_pipeline(out: str | Path = "runs/pipeline", sizes: PipelineSizes = PipelineSizes(),
                 report: Callable[[str], None] = print) -> dict:
    from ...train.config import BindConfig, StageOneConfig, load_config
    from ...train.trainer import run
    from .imagebind import run_recipe
    
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    s = sizes
    from ...devices import cpu_has_native_bf16

    # bf16 where the CPU computes in it (or a GPU trains); emulated bf16 is slower than fp32.
    precision = "bf16" if cpu_has_native_bf16() or torch.cuda.is_available() else "fp32"
    clip_cfg = load_config(None, [
        "model.preset=clip-world-minilm", "model.text_weights=minilm", "model.freeze_text=true",
        f"data.train_n={s.clip_scenes}", f"data.val_n={s.val_scenes}", "optim.lr=1e-3", "optim.warmup_steps=30",
        f"train.steps={s.clip_steps}", "train.batch_size=128" if s.clip_scenes >= 128 else "train.batch_size=32",
        f"train.precision={precision}", "train.log_every=25", f"train.ckpt_every={max(s.clip_steps, 1)}",
        f"train.out={out / 'clip'}"])
    report(f"[1/6] stage 1: CLIP on {s.clip_scenes} world scenes, {s.clip_steps} steps (frozen MiniLM text, {precision}"
           + (")" if precision == "bf16" else ": this CPU has no native bf16)"))
    clip_eval = run(clip_cfg, progress=lambda r: report(f"  step {r['step']} loss {r['loss']:.3f}")
                    if r["step"] % 50 == 0 else None)
    report(f"  text→image R@1 {clip_eval['text_to_image_R@1']:.3f} R@5 {clip_eval['text_to_image_R@5']:.3f}")
    report(f"[2/6] stage 2: binding audio, depth, thermal, IMU to the image space ({s.bind_scenes} scenes)")
    bind_cfg = load_config(None, [f"train_n={s.bind_scenes}", f"test_n={s.bind_test}", f"train.steps={s.bind_steps}",
                                  f"train.batch_size={min(128, s.bind_scenes // 2)}", "optim.warmup_steps=10",
                                  f"train.precision={precision}",
                                  f"out={out / 'imagebind'}"], cls=BindConfig)
    bind_cfg.stage1 = StageOneConfig(model=str(out / "clip" / "model"))
    run_recipe(bind_cfg, report=lambda line: report("  " + line))
    from ...tasks import Embedder

    embedder = Embedder.from_checkpoint(out / "imagebind" / "model")
    report("[3/6] report: curves, retrieval examples, cross-modal similarities")
    report_file = write_report(out, embedder, clip_eval, n_grid=min(6, s.bind_test))
    report(f"[4/6] writing {s.index_scenes} held-out scenes as ordinary files, {s.index_documents} world "
           "documents as scanned PDFs")
    from ..files import write_files
    from ...search.ingest import index_folder
    from ...search.store import Store

    files = write_files(out / "files", "test", s.index_scenes, start=s.bind_test)
    questions = write_scans((files / "documents").resolve(), s.index_documents)
    report("[5/6] indexing them (vectors, and words: captions, OCR of the scans)")
    store = Store(out / "index", embedder.dim, embedder.model_id, str((out / "imagebind" / "model").resolve()))
    ingest = index_folder(files, embedder, store)
    report(f"[6/6] document QA: LayoutLMv2 on {s.qa_documents} world documents, {s.qa_steps} steps")
    qa_eval = run(load_config(None, [
        "model.preset=layoutlmv2-small", "objective.kind=doc_qa", "data.kind=world",
        f"data.train_n={s.qa_documents}", "data.val_n=50", "data.box_jitter=8", "optim.lr=5e-4",
        "optim.weight_decay=0.01", "optim.warmup_steps=20", f"train.steps={s.qa_steps}", "train.batch_size=32",
        "train.log_every=50", f"train.ckpt_every={max(s.qa_steps, 1)}", f"train.out={out / 'doc-qa'}"]))
    report(f"  ANLS {qa_eval['val_anls']:.3f} on {qa_eval['val_questions']} questions of unseen documents")
    minutes = (time.perf_counter() - start) / 60
    summary = {"minutes": round(minutes, 1), "clip": clip_eval, "report": str(report_file),
               "index": {**ingest.as_dict(), **store.counts()}, "doc_qa": qa_eval,
               "demo": demo(store, embedder, out / "doc-qa" / "model", questions, report)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    report(f"done in {minutes:.1f} min. Report: {report_file}")
    report(f"Serve the UI:  polymodal serve {out / 'index'} --qa {out / 'doc-qa' / 'model'}   "
           "(then open the URL it prints: it carries the access token)")
    return summary


def write_scans(folder: Path, n: int) -> list[dict]:
    """World documents (test split) saved as image-only PDFs, as a scanner makes them; their questions
    and answers [{"file", "question", "answer"}]."""
    from PIL import Image

    from ..documents import render_document

    folder.mkdir(parents=True, exist_ok=True)
    questions = []
    for i in range(n):
        doc = render_document(0, "test", i)
        name = folder / f"{doc.doc_class}-{i:03d}.pdf"
        Image.fromarray(doc.image).save(name, resolution=100)
        questions += [{"file": str(name), "question": q["question"], "answer": q["answer"]} for q in doc.qa]
    return questions


def demo(store, embedder, qa_dir: Path, questions: list[dict], report: Callable[[str], None]) -> dict:
    """One hybrid query and one question asked of the folder's documents, printed as the CLI does."""
    from ...search.ask import ask_index
    from ...search.hybrid import Searcher
    from ...tasks.documents import DocumentModel

    searcher = Searcher(store, embedder)
    answer = searcher.search(embedder.embed_texts([QUERY])[0].numpy(), QUERY, k=5, min_relevance=0.0)
    report(f'Hybrid search:  polymodal search {store.folder} "{QUERY}"')
    for rank, hit in enumerate(answer.hits, 1):
        relevance = "—" if hit.relevance is None else f"{hit.relevance:.2f}"
        report(f"  {rank}. {Path(hit.item.path).name:<22} relevance {relevance}  {hit.why()}")
    out = {"query": QUERY, "hits": [h.to_json() for h in answer.hits]}
    asked_q = next((q for q in questions if "total" in q["question"].lower()), questions[0] if questions else None)
    if asked_q is None:
        return out
    asked = ask_index(searcher, asked_q["question"], DocumentModel.from_folder(qa_dir))
    report(f'Ask:  polymodal ask {store.folder} "{asked_q["question"]}" --qa {qa_dir}')
    best = asked.best
    if best is None:
        report("  no answer found on the best pages")
    else:
        report(f'  → "{best.answer}" (score {best.score:.2f}) on {Path(best.hit.item.file).name} page '
               f'{best.hit.item.page or 1}, box {[round(v) for v in best.box]}')
    expected = {q["file"]: q["answer"] for q in questions if q["question"] == asked_q["question"]}
    if best is not None and best.hit.item.file in expected:
        report(f'  that document says: "{expected[best.hit.item.file]}"')
    out["ask"] = {**asked.to_json(), "expected": expected}
    return out


def write_report(out: Path, embedder, clip_eval: dict, n_grid: int = 6) -> Path:
    """``out/report.md`` and ``out/report.html`` with PNGs beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import WorldDataset
    from ...train.data import normalize

    model = embedder.model
    # Stage-2 loss curves (stage 1's are out/clip/curves.png, drawn by the trainer).
    log = [json.loads(line) for line in (out / "imagebind" / "log.jsonl").read_text().splitlines()]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for m in dict.fromkeys(r["modality"] for r in log):
        for kind, style in (("emergent", "-"), ("supervised", ":")):
            rows = [r for r in log if r["modality"] == m and r["kind"] == kind]
            if rows:
                ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], style, label=f"{m} {kind}")
    ax.set_xlabel("step")
    ax.set_ylabel("InfoNCE loss")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "binding_curves.png", dpi=100)
    plt.close(fig)
    # Retrieval examples and the cross-modal similarity matrix on held-out scenes.
    n = max(n_grid, 2)
    test = WorldDataset("test", 64, image_size=model.config.image_size,
                        modalities=("image", "caption", "audio", "depth", "thermal"))
    items = [test[i] for i in range(64)]
    from ..sensor_inputs import world_sensor_input

    with torch.no_grad():
        images = torch.stack([it["image"] for it in items])
        image_emb = torch.nn.functional.normalize(model.encode("image", normalize(images), postprocess=False), dim=-1)
        text_emb = embedder.embed_texts([it["caption"] for it in items[:n]])
        sims = text_emb @ image_emb.T
    fig, axes = plt.subplots(n, 5, figsize=(10, 2.1 * n))
    for row in range(n):
        top = sims[row].topk(4).indices.tolist()
        axes[row, 0].text(0, 0.5, _wrap(items[row]["caption"]), fontsize=7, va="center")
        axes[row, 0].axis("off")
        for col, idx in enumerate(top, 1):
            axes[row, col].imshow(items[idx]["image"].permute(1, 2, 0).numpy())
            axes[row, col].set_title(f"{'✓ ' if idx == row else ''}{sims[row, idx]:.2f}", fontsize=8)
            axes[row, col].axis("off")
    fig.tight_layout()
    fig.savefig(out / "retrieval_examples.png", dpi=90)
    plt.close(fig)
    sensors = [m for m in ("audio", "depth", "thermal") if m in model.modalities]
    fig, axes = plt.subplots(1, len(sensors) + 1, figsize=(3.2 * (len(sensors) + 1), 3.2))
    panels = [("text", text_emb)]
    with torch.no_grad():
        for m in sensors:
            x = torch.stack([world_sensor_input(m, it, model.config.audio_frames) for it in items[:n]])
            panels.append((m, torch.nn.functional.normalize(model.encode(m, x, postprocess=False), dim=-1)))
    for ax, (name, emb) in zip(np.atleast_1d(axes), panels):
        mat = (emb @ image_emb[:n].T).numpy()
        ax.imshow(mat, cmap="viridis")
        ax.set_title(f"{name} × image", fontsize=9)
        ax.set_xlabel("image of scene")
        ax.set_ylabel(f"{name} of scene")
    fig.tight_layout()
    fig.savefig(out / "similarity_matrix.png", dpi=100)
    plt.close(fig)
    table = (out / "imagebind" / "results.md").read_text()
    md = f"""# polymodal pipeline report

## Stage 1 — CLIP (image tower + frozen all-MiniLM-L6-v2)

text→image R@1 {clip_eval['text_to_image_R@1']:.3f} · R@5 {clip_eval['text_to_image_R@5']:.3f} ·
R@10 {clip_eval['text_to_image_R@10']:.3f}; image→text R@1 {clip_eval['image_to_text_R@1']:.3f};
zero-shot colour–shape: held-out pairs {clip_eval['zero_shot_held_out_top1']:.3f}, seen pairs
{clip_eval['zero_shot_seen_top1']:.3f} (chance {clip_eval['zero_shot_chance']:.3f}).

![stage 1 curves](clip/curves.png)

## Stage 2 — ImageBind: sensors bound to the image space only

{table}
![binding curves](binding_curves.png)

## Retrieval examples (held-out captions → top-4 images; ✓ = the caption's own scene)

![retrieval examples](retrieval_examples.png)

## Cross-modal similarity (rows: a modality of scene i, columns: the image of scene j)

A bright diagonal means a sensor finds its own scene's image; text and sensors never met in training.

![similarity matrix](similarity_matrix.png)
"""
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(_html(md))
    return out / "report.html"


def _wrap(text: str, width: int = 34) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "\n".join(lines + [line])


def _html(md: str) -> str:
    """A small Markdown subset (headings, images, tables, paragraphs) as a self-contained page."""
    body, table = [], []

    def flush_table():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-: ")]
            cells = [[html.escape(c.strip()).replace("**", "") for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:])
            body.append(f"<table><tr>{head}</tr>{rest}</table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.startswith("!["):
            alt, src = line[2:].split("](", 1)
            body.append(f'<p><img src="{html.escape(src.rstrip(")"))}" alt="{html.escape(alt)}"></p>')
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    style = ("body{font:14px system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px}"
             "img{max-width:100%}")
    return f"<!doctype html><meta charset=utf-8><title>polymodal report</title><style>{style}</style>" + "".join(body)
