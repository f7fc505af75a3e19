"""Step localisation with a VideoCLIP model (CrossTask style): score every second of a video against
each step's text, predict each step at its best second, and count a step found when that second lies
inside the step's true span.

    per-second features [S, D] ─ a window of ``window`` s around each second ─ video tower ─┐
    step texts [K] ─ text tower ──────────────────────────────────────────────────────────┴─ dot ─▶ [S, K]
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..models.videoclip import pad_clips, text_ids


@torch.no_grad()
def step_scores(model, features: torch.Tensor, texts: list[str], tokenizer, window: int = 3) -> torch.Tensor:
    """Per-second features [S, D] and K step texts → scores [S, K]: each second's clip is the
    ``window`` seconds centred on it (cut at the video's ends)."""
    if features.dim() != 2 or len(features) == 0:
        raise ValueError(f"expected per-second features [S, D], got {tuple(features.shape)}")
    model.eval()
    half = window // 2
    clips = [features[max(0, s - half):s + half + 1] for s in range(len(features))]
    vfeats, vmasks = pad_clips(clips, model.config.max_video_len)
    video = model.encode_video(vfeats, vmasks)
    text = model.encode_text(*text_ids(tokenizer, texts))
    return video.float() @ text.float().T


def localisation_recall(scores: torch.Tensor, spans: list[tuple[float, float]]) -> tuple[float, float]:
    """(recall, chance): the share of steps whose best second lies in [floor(start), ceil(end)), and
    the same for a second drawn uniformly."""
    s = scores.shape[0]
    hits, chance = 0, 0.0
    for k, (start, end) in enumerate(spans):
        lo, hi = max(int(math.floor(start)), 0), min(int(math.ceil(end)), s)
        hits += lo <= int(scores[:, k].argmax()) < hi
        chance += max(hi - lo, 0) / s
    return hits / max(len(spans), 1), chance / max(len(spans), 1)


MAX_STEPS = 200  # steps on one timeline
MAX_STEPS_BYTES = 1 << 20


def read_text_bounded(path: str | Path, max_bytes: int = MAX_STEPS_BYTES) -> str:
    """A small UTF-8 text file (the steps), refused by name when larger than ``max_bytes``."""
    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise ValueError(f"{path}: {path.stat().st_size} bytes is more than a list of steps holds")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 ({e.reason})") from None


def plot_timeline(scores: torch.Tensor, texts: list[str], path: str | Path,
                  spans: list[tuple[float, float]] | None = None) -> Path:
    """A PNG: one row per step, its per-second scores as a heat map, the best second marked, and the
    true span outlined when known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, k = scores.shape
    # 35 px a second and 60 a step, up to 40 × 40 inches: a long video is squeezed, never an unbounded canvas
    fig, ax = plt.subplots(figsize=(min(max(6.0, s * 0.35), 40.0), min(0.6 * k + 1.2, 40.0)))
    ax.imshow(scores.T.numpy(), aspect="auto", cmap="viridis", interpolation="nearest", extent=(0, s, k, 0))
    for i in range(k):
        best = int(scores[:, i].argmax())
        ax.plot(best + 0.5, i + 0.5, "w*", markersize=10)
        if spans is not None:
            start, end = spans[i]
            ax.add_patch(plt.Rectangle((start, i + 0.05), end - start, 0.9, fill=False, edgecolor="red", linewidth=2))
    ax.set_yticks([i + 0.5 for i in range(k)], texts)
    ax.set_xlabel("seconds")
    ax.set_title("step scores per second (★ best second" + (", red: true span)" if spans else ")"))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
