"""ImageBind's two-stage recipe on the world, end to end (``polymodal bind configs/imagebind-world.yaml``).

1. Stage 1 is the CLIP recipe (image + frozen MiniLM text), or a CLIP folder it already made.
2. Stage 2 freezes both towers and binds each sensor encoder to the scene's image (IMU: to its
   video clip) — no (sensor, text) pair is used. For comparison it also trains the same encoder
   on (sensor, caption) pairs (IMU: narration), the supervised upper bound.
3. Held-out test scenes: emergent zero-shot vs supervised, sensor → image/text retrieval, and
   image + sensor embedding arithmetic. Writes ``results.json``, ``results.md``, ``model/``
   (the bound ImageBind, tokenizer inside) and ``log.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Callable

import torch

from ..sensor_inputs import world_processor
from ...devices import DeviceError, host_io, resolve
from ...eval.tables import metrics_line
from ...models.imagebind import imagebind_from_clip
from ...modalities.text import load_tokenizer
from ...models.clip import CLIP
from ...registry import preset
from ...weights import load_checkpoint, save
from ...train.binding import fresh_encoder, freeze, train_encoder
from ...train.config import BindConfig, ConfigError, load_config
from . import binding_eval as ev
from .binding_data import SENSORS, BindingData, embed_texts, prepare

# The zero-shot task each sensor is judged on for the ≥ 0.8 × supervised target (others are reported).
PRIMARY = {"audio": "place", "depth": "count", "thermal": "place", "imu": "camera"}
ARITHMETIC = ("audio", "thermal")  # sensors that carry the place, for image + sensor queries


def stage_one(cfg: BindConfig, report: Callable[[str], None]) -> Path:
    """The CLIP model folder of stage 1, training it unless ``stage1.model`` names one or the
    stage-1 run already finished."""
    if cfg.stage1.model:
        folder = Path(cfg.stage1.model)
        if not (folder / "config.json").is_file():
            raise ConfigError(f"stage1.model: {folder} is not a saved model folder (no config.json)")
        return folder
    from ...train.trainer import run

    clip_cfg = load_config(cfg.stage1.config, cfg.stage1.overrides)
    folder = Path(clip_cfg.train.out) / "model"
    if (folder / "config.json").is_file() and (Path(clip_cfg.train.out) / "eval.json").is_file():
        report(f"stage 1: reusing {folder}")
        return folder
    report(f"stage 1: training the CLIP recipe {cfg.stage1.config} → {clip_cfg.train.out}")
    run(clip_cfg, progress=lambda r: report(f"stage 1 step {r['step']}/{clip_cfg.train.steps} loss {r['loss']:.3f}")
        if r["step"] % 100 == 0 else None)
    return folder


def evaluate_modality(model, m: str, encoder, supervised, test: BindingData, embed) -> dict:
    """Zero-shot (emergent, supervised, the image tower itself, chance) and retrieval for one sensor."""
    with torch.no_grad():  # on the encoders' device, batched; embeddings back on the CPU
        emb = torch.cat([host_io(encoder)(x) for x in test.inputs[m].split(512)])
        sup = torch.cat([host_io(supervised)(x) for x in test.inputs[m].split(512)]) if supervised is not None else None
    target = test.video if m == "imu" else test.image
    out: dict = {"bound_to": "video" if m == "imu" else "image", "zero_shot": {}}
    for task in ev.TASKS[m]:
        classes, correct = ev.class_embeddings(task, embed), ev.truth(task, test.scenes, test.pan)
        emergent = ev.zero_shot(emb, classes, correct)
        row = {"emergent": emergent["top1"], "image_tower": ev.zero_shot(target, classes, correct)["top1"],
               "chance": emergent["chance"]}
        if sup is not None:
            row["supervised"] = ev.zero_shot(sup, classes, correct)["top1"]
            row["ratio"] = row["emergent"] / max(row["supervised"], 1e-9)
        out["zero_shot"][task] = row
    out["retrieval"] = {f"{m}_to_{out['bound_to']}": ev.retrieval(emb, target),
                        f"{m}_to_text": ev.retrieval(emb, test.captions[:, 0])}
    if sup is not None:
        out["retrieval"][f"supervised_{m}_to_text"] = ev.retrieval(sup, test.captions[:, 0])
    if m in ARITHMETIC:
        out["arithmetic"] = ev.arithmetic(test.image, emb, test.scenes)
    return out


def run_recipe(cfg: BindConfig, report: Callable[[str], None] = print) -> dict:
    unknown = [m for m in cfg.modalities if m not in SENSORS]
    if unknown:
        raise ConfigError(f"modalities: {unknown} are not sensor modalities; choose from {list(SENSORS)}")
    try:
        device = resolve(cfg.train.device)  # before stage 1 spends anything
    except DeviceError as e:
        raise ConfigError(f"train.device: {e}") from e
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    clip_dir = stage_one(cfg, report)
    clip = load_checkpoint(clip_dir)
    if not isinstance(clip, CLIP):
        raise ConfigError(f"stage 1 model {clip_dir} is a {type(clip).__name__}, not a CLIP")
    tokenizer = load_tokenizer(clip_dir)
    sensors = preset(cfg.preset)  # sensor sizes from the preset, vision/text towers from stage 1
    for m in SENSORS:
        if m not in cfg.modalities:
            setattr(sensors, m, None)
    torch.manual_seed(cfg.seed)
    model = imagebind_from_clip(clip, sensors).to(device)
    config = model.config
    freeze(model.encoders["image"])
    freeze(model.encoders["text"])
    modalities = tuple(cfg.modalities)
    log = (out / "log.jsonl").open("w")

    def note(record: dict) -> None:
        log.write(json.dumps(record) + "\n")
        log.flush()

    report(f"stage 2: rendering {cfg.train_n} train + {cfg.test_n} test scenes and embedding the frozen targets")
    every = max(cfg.train_n // 4, 1)
    train = prepare(model, tokenizer, "train", cfg.train_n, cfg.seed, modalities, cfg.workers,
                    progress=lambda d, n: report(f"  train scenes {d}/{n}") if d % every < 64 or d == n else None)
    test = prepare(model, tokenizer, "test", cfg.test_n, cfg.seed, modalities, cfg.workers)
    embed = lambda texts: embed_texts(model, tokenizer, texts)  # noqa: E731
    results: dict = {"stage1_model": str(clip_dir), "config": cfg.to_dict(), "modalities": {}}
    for m in modalities:
        scale = config.scales[m]
        kw = dict(optim=cfg.optim, train=dataclasses.replace(cfg.train, seed=cfg.seed))
        report(f"stage 2: binding {m} to the {'video clip' if m == 'imu' else 'image'} ({cfg.train.steps} steps)")
        train_encoder(model.encoders[m], scale, train.inputs[m], train.video if m == "imu" else train.image,
                      log=lambda r, m=m: (note({"modality": m, "kind": "emergent", **r}),
                                          report(f"  {m} step {r['step']} loss {r['loss']:.3f}")), **kw)
        supervised = None
        if cfg.supervised:
            report(f"stage 2: supervised upper bound for {m} on (sensor, {'narration' if m == 'imu' else 'caption'})")
            supervised = fresh_encoder(config, m, cfg.seed + 1)
            train_encoder(supervised, scale, train.inputs[m], train.narration if m == "imu" else train.captions,
                          log=lambda r, m=m: note({"modality": m, "kind": "supervised", **r}), **kw)
        results["modalities"][m] = evaluate_modality(model, m, model.encoders[m], supervised, test, embed)
        report(f"  {m} zero-shot: " + metrics_line(results["modalities"][m]["zero_shot"]))
    log.close()
    results["primary"] = {m: PRIMARY[m] for m in modalities}
    save(model, out / "model", processor=world_processor(model.config))
    for f in Path(clip_dir).iterdir():  # the tokenizer travels with the model
        if f.name not in ("config.json", "model.safetensors", "processor_config.json") and f.is_file():
            shutil.copy2(f, out / "model" / f.name)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(results_table(results))
    return results


def results_table(results: dict) -> str:
    """The README table: emergent vs supervised zero-shot per sensor, retrieval, arithmetic."""
    lines = ["| sensor | bound to | zero-shot task | emergent | supervised | emergent / supervised | image tower | chance |"
             " sensor→image R@1 / R@5 | sensor→text R@1 / R@5 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for m, r in results["modalities"].items():
        ret = r["retrieval"]
        to_img, to_txt = ret[f"{m}_to_{r['bound_to']}"], ret[f"{m}_to_text"]
        for i, (task, z) in enumerate(r["zero_shot"].items()):
            star = " **(target)**" if results.get("primary", {}).get(m) == task else ""
            sup = f"{z['supervised']:.3f}" if "supervised" in z else "—"
            ratio = f"{z['ratio']:.2f}" if "ratio" in z else "—"
            retr = (f"{to_img['R@1']:.3f} / {to_img['R@5']:.3f} | {to_txt['R@1']:.3f} / {to_txt['R@5']:.3f}"
                    if i == 0 else " | ")
            lines.append(f"| {m if i == 0 else ''} | {r['bound_to'] if i == 0 else ''} | {task}{star} | "
                         f"{z['emergent']:.3f} | {sup} | {ratio} | {z['image_tower']:.3f} | {z['chance']:.3f} | {retr} |")
    arith = {m: r["arithmetic"] for m, r in results["modalities"].items() if "arithmetic" in r}
    if arith:
        lines += ["", "| image of scene A + sensor of scene B → retrieves A's object in B's place | image alone | "
                      "sensor alone | image + sensor |", "|---|---|---|---|"]
        lines += [f"| {m} | {a['image']:.3f} | {a['sensor']:.3f} | {a['sum']:.3f} |" for m, a in arith.items()]
    return "\n".join(lines) + "\n"
