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


def check_feature_record(features: str | Path, model_dir: str | Path, s3d: bool = False) -> None:
    """Refuse per-second features that another backbone or frame rate made than ``model_dir`` reads:
    ``backbone.json`` beside them (``polymodal video features`` writes it) against the model's
    ``frame_tower.json`` (or S3D at 30 fps for an MMPT model given ``--s3d``). Scores of features made
    at 2 fps by a model that reads 4 fps put every step at the wrong second, without a word."""
    import json

    from .video_features import BACKBONE_FILE
    from .video_search import frame_tower_record

    features = Path(features)
    record = features.parent / BACKBONE_FILE
    if not record.is_file():
        raise ValueError(f"{features}: no {BACKBONE_FILE} beside it says which backbone and frame rate made these "
                         "features (polymodal video features writes one)")
    try:
        spec = json.loads(record.read_text())
        made = (str(spec["backbone"]), int(spec["fps"]), str(spec.get("weights", "")))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{record}: not a backbone record ({e})") from None
    if s3d:
        wanted = ("s3d", 30, None)
    else:
        tower, fps = frame_tower_record(model_dir)
        wanted = ("clip", fps, str(Path(tower).resolve()))
    if made[0] != wanted[0] or made[1] != wanted[1] or (wanted[2] and Path(made[2]).resolve() != Path(wanted[2])):
        raise ValueError(f"{features}: made by {made[0]} at {made[1]} fps ({made[2] or 'unknown weights'}), but "
                         f"{model_dir} reads {wanted[0]} features at {wanted[1]} fps"
                         + (f" ({wanted[2]})" if wanted[2] else "") + "; extract them again with its frame backbone")


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
