"""PNG curves of a run: loss, learning rate, what the objective logs (temperature, accuracy) and
validation metrics, read from ``RUN/metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``RUN/curves.png`` (or ``out``) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}")
    train, val = {}, {}
    for n, line in enumerate(metrics.read_text().splitlines(), 1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{metrics}:{n}: not JSON ({e})") from e
        (train if "loss" in rec else val)[rec["step"]] = rec  # a resumed run re-logs steps: keep the last
    if not train:
        raise ValueError(f"{metrics} has no training records")
    steps = sorted(train)
    optional = [("logit_scale", "temperature (logit scale)"), ("accuracy", "batch accuracy")]
    panels = [("loss", "loss"), ("lr", "learning rate")] + [p for p in optional if p[0] in train[steps[0]]]
    val_keys = sorted({k for rec in val.values() for k in rec if k.startswith("val/") and ("R@" in k or "acc" in k)})
    fig, axes = plt.subplots(1, len(panels) + bool(val_keys), figsize=(4.2 * (len(panels) + bool(val_keys)), 3.4))
    for ax, (key, title) in zip(axes, panels):
        ax.plot(steps, [train[s][key] for s in steps], lw=1.2)
        ax.set_title(title)
        ax.set_xlabel("step")
    axes[0].set_yscale("log")
    if val_keys:
        vsteps = sorted(val)
        for key in val_keys:
            axes[-1].plot(vsteps, [val[s].get(key) for s in vsteps], marker="o", label=key.removeprefix("val/"))
        axes[-1].set_title("validation")
        axes[-1].legend(fontsize=7)
        axes[-1].set_xlabel("step")
    fig.tight_layout()
    out = Path(out) if out else run_dir / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
