"""bf16 autocast vs fp32 training on the world: the same runs (data, tokenizer, seeds) in both.

    python benchmarks/bf16_curve.py [--steps 200] [--train-n 8000] [--seeds 0,1,2]

For each seed (model init and batch order) the run is trained in fp32 and in bf16. Prints, per
25-step window, each precision's mean loss over the seeds with the seed-to-seed spread, and the
bf16 − fp32 difference next to its noise: the standard error of a difference of two seed means. A
window "matches within noise" when the difference is inside two standard errors.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from polymodal.train.config import load_config
from polymodal.train.trainer import Trainer


def losses(tmp: Path, precision: str, seed: int, args, tokenizer: str | None) -> tuple[list[float], Path]:
    out = tmp / f"{precision}-{seed}"
    over = [f"train.steps={args.steps}", f"data.train_n={args.train_n}", "data.val_n=100", f"train.precision={precision}",
            f"train.seed={seed}", "train.log_every=1", "optim.lr=1e-3", "optim.warmup_steps=50", f"train.out={out}",
            "train.ckpt_every=100000"]
    if tokenizer:
        over.append(f"data.tokenizer={tokenizer}")
    trainer = Trainer(load_config("configs/clip-world-tiny.yaml", over))
    return [r["loss"] for r in trainer.train()], out / "tokenizer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--train-n", type=int, default=8000)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    curves: dict[str, list] = {"fp32": [], "bf16": []}
    with tempfile.TemporaryDirectory() as tmp:
        tok = None
        for seed in seeds:
            for precision in ("fp32", "bf16"):
                loss, saved = losses(Path(tmp), precision, seed, args, tok)
                tok = tok or str(saved)  # one tokenizer for every run (BPE training is not reproducible)
                curves[precision].append(loss)
    a, b, w, n = np.array(curves["fp32"]), np.array(curves["bf16"]), 25, len(seeds)
    print(f"clip-world-tiny, batch 128, {args.steps} steps, seeds {seeds}; window means over seeds (± seed std)")
    print("| steps | fp32 | bf16 | bf16 − fp32 | 2 × SE | within noise |\n|---|---|---|---|---|---|")
    rows = []
    for s in range(0, args.steps, w):
        fa, fb = a[:, s:s + w].mean(1), b[:, s:s + w].mean(1)  # [seeds]
        diff = fb.mean() - fa.mean()
        se = float(np.sqrt(fa.var(ddof=1) / n + fb.var(ddof=1) / n)) if n > 1 else float("nan")
        rows.append({"steps": f"{s + 1}-{s + w}", "diff": float(diff), "two_se": 2 * se, "within": bool(abs(diff) <= 2 * se)})
        print(f"| {s + 1}–{s + w} | {fa.mean():.3f} ± {fa.std(ddof=1) if n > 1 else 0:.3f} | "
              f"{fb.mean():.3f} ± {fb.std(ddof=1) if n > 1 else 0:.3f} | {diff:+.3f} | {2 * se:.3f} | "
              f"{'yes' if rows[-1]['within'] else 'no'} |")
    print(json.dumps({"windows_within_noise": sum(r["within"] for r in rows), "windows": len(rows), "rows": rows}))


if __name__ == "__main__":
    main()
