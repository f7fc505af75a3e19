"""Sensor files as pictures for the browser: depth and thermal maps as colour maps, IMU as curves."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..modalities.imu import load_imu  # noqa: E402
from ..modalities.maps import load_map  # noqa: E402

CMAP = {"depth": "viridis_r", "thermal": "inferno"}


def sensor_png(path: str | Path, modality: str) -> bytes:
    """PNG bytes: a colour-mapped map (near = bright for depth, hot = bright for thermal) or the six
    IMU channels over time."""
    buf = io.BytesIO()
    if modality in CMAP:
        arr = load_map(path).numpy()
        lo, hi = np.percentile(arr, [1, 99])
        rgba = plt.get_cmap(CMAP[modality])(np.clip((arr - lo) / max(hi - lo, 1e-9), 0, 1))
        plt.imsave(buf, rgba, format="png")
    else:
        imu = load_imu(path).numpy()
        fig, axes = plt.subplots(2, 1, figsize=(4, 3), sharex=True)
        for c, name in enumerate(("ax", "ay", "az")):
            axes[0].plot(imu[c], label=name, lw=1)
        for c, name in enumerate(("gx", "gy", "gz")):
            axes[1].plot(imu[3 + c], label=name, lw=1)
        axes[0].legend(fontsize=6, ncol=3)
        axes[1].legend(fontsize=6, ncol=3)
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
    return buf.getvalue()
