"""A contact sheet: for a few samples, every modality side by side with its caption and labels, so a
person can see at a glance that the modalities agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, render_audio
from .captions import captions
from .documents import render_document
from .render import render
from .scene import sample_scene
from .video import render_video

COLUMNS = ("image + boxes", "depth (m)", "thermal (°C)", "audio spectrogram", "IMU", "video frames 0, 3, 7",
           "document + entities")
ENTITY_COLOURS = {"header": "tab:red", "question": "tab:blue", "answer": "tab:green", "other": "tab:gray"}


def _spectrogram(audio: np.ndarray) -> np.ndarray:
    """log-magnitude STFT [freq, time] (25 ms Hann window, 10 ms hop)."""
    win, hop = int(0.025 * SAMPLE_RATE), int(0.010 * SAMPLE_RATE)
    frames = np.lib.stride_tricks.sliding_window_view(audio, win)[::hop] * np.hanning(win)
    return np.log(np.abs(np.fft.rfft(frames, axis=-1)).T + 1e-6)


def contact_sheet(out: str | Path, split: str = "val", indices: tuple[int, ...] = (0, 1, 2, 3), seed: int = 0,
                  image_size: int = 64) -> Path:
    """Write a PNG contact sheet of the given samples to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a folder; give a .png file name")
    fig, axes = plt.subplots(len(indices), len(COLUMNS), figsize=(3.0 * len(COLUMNS), 3.1 * len(indices)),
                             squeeze=False)
    for row, index in enumerate(indices):
        scene = sample_scene(seed, split, index)
        r = render(scene, image_size)
        clip = render_video(scene, 8, image_size)
        ax = axes[row]
        ax[0].imshow(r.image)
        for (x0, y0, x1, y1), obj in zip(r.boxes, scene.objects, strict=True):
            ax[0].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="white", lw=1))
            ax[0].text(x0, y0 - 1, f"{obj.name} {obj.depth:.1f}m", color="white", fontsize=6,
                       bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5, "lw": 0})
        for col, (data, cmap) in enumerate(((r.depth, "viridis_r"), (r.thermal, "inferno")), start=1):
            im = ax[col].imshow(data, cmap=cmap)
            fig.colorbar(im, ax=ax[col], fraction=0.046)
        ax[3].imshow(_spectrogram(render_audio(scene)), origin="lower", aspect="auto", cmap="magma")
        t = np.arange(clip.imu.shape[1]) / 100
        for k, label in ((0, "acc x"), (2, "acc z − g"), (5, "gyro z")):
            ax[4].plot(t, clip.imu[k] - (9.81 if k == 2 else 0), label=label, lw=1)
        ax[4].legend(fontsize=6)
        ax[4].set_xlabel("s", fontsize=7)
        ax[5].imshow(np.concatenate([clip.frames[0], clip.frames[3], clip.frames[7]], axis=1))
        doc = render_document(seed, split, index)
        ax[6].imshow(doc.image)
        for e in doc.entities:
            x0, y0, x1, y1 = e.box
            ax[6].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=ENTITY_COLOURS[e.label], lw=0.8))
        ax[6].set_xlabel(f"{doc.doc_class}: {doc.qa[0]['question']} → {doc.qa[0]['answer']}", fontsize=7)
        narration = "; ".join(f"[{g.start:.2f}–{g.end:.2f}s]{'' if g.visible else ' (not visible)'} {g.text}"
                              for g in clip.narration) or "(no narration)"
        ax[0].set_ylabel(f"{split} #{index}\n{scene.place}", fontsize=8)
        ax[5].set_title(narration, fontsize=6, wrap=True)
        ax[2].set_xlabel(captions(scene)[1]["text"], fontsize=7, wrap=True)
        for col, a in enumerate(ax):
            if row == 0:
                a.set_title(COLUMNS[col] if col != 5 else f"{COLUMNS[col]}\n{narration}", fontsize=7)
            if col != 4:
                a.set_xticks([])
                a.set_yticks([])
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
