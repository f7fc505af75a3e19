"""Which CPU path a model's linears take on this machine, measured once and remembered.

oneDNN with prepacked weights (:mod:`.packed_linear`) beats PyTorch's default MKL GEMM by 1.1–2×
on some CPUs and not at all on others (docs/benchmarks.md). :func:`choose` times both paths on
the model's own linear shapes (each ``in × out`` weight against ``rows`` input rows, weighted by how
often the shape occurs) and packs the model when oneDNN is faster by ``margin``. The decision is
cached per (CPU model, torch version, dtype, shapes) in ``$POLYMODAL_CACHE/cpu_paths.json``, so
calibration runs once per machine and model geometry.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .packed_linear import PackedLinear, available, pack_linears

CACHE_FILE = "cpu_paths.json"


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_file() -> Path:
    root = Path(os.environ.get("POLYMODAL_CACHE") or Path.home() / ".cache" / "polymodal")
    return root / CACHE_FILE


def _shapes(model: nn.Module) -> Counter:
    return Counter((m.in_features, m.out_features) for m in model.modules() if type(m) is nn.Linear)


def best_time(fn, repeats: int = 5) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(shapes: Counter, dtype: torch.dtype, rows: int = 1024, repeats: int = 3) -> dict[str, float]:
    """Seconds per forward of every linear (weighted by count) under each path: {"plain", "packed"}."""
    total = {"plain": 0.0, "packed": 0.0}
    for (fan_in, fan_out), count in shapes.items():
        layer = nn.Linear(fan_in, fan_out).to(dtype)
        x = torch.randn(rows, fan_in, dtype=dtype)
        packed = PackedLinear(layer, rows)
        with torch.inference_mode():
            total["plain"] += count * best_time(lambda: F.linear(x, layer.weight, layer.bias), repeats)
            total["packed"] += count * best_time(lambda: packed(x), repeats)
    return total


def choose(model: nn.Module, margin: float = 0.03, rows: int = 1024) -> str:
    """``"packed"`` (and pack ``model``'s linears in place) when oneDNN is faster than the plain path
    on this machine by more than ``margin``, else ``"plain"``. Cached (see the module docstring)."""
    shapes = _shapes(model)
    params = list(model.parameters())
    if not shapes or not available() or not params or params[0].device.type != "cpu":
        return "plain"
    dtype = params[0].dtype
    key = "|".join([cpu_name(), torch.__version__, str(dtype), str(torch.get_num_threads()),
                    ",".join(f"{i}x{o}" for i, o in sorted(shapes))])
    cache = _cache_file()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        seconds = measure(shapes, dtype, rows)
        known[key] = {"path": "packed" if seconds["packed"] < seconds["plain"] * (1 - margin) else "plain",
                      "seconds": seconds}
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known, indent=1))
            tmp.replace(cache)
        except OSError:
            pass  # a read-only home: measured again next time
    path = known[key]["path"]
    if path == "packed":
        pack_linears(model, rows)
    return path


def set_linear_path(model: nn.Module, choice: str | None = None) -> str:
    """Put a CPU inference model's linears on a path: ``auto`` (:func:`choose`, measured and cached),
    ``packed`` or ``plain``; default ``$POLYMODAL_CPU_PATH`` or ``auto``. Returns the path taken."""
    choice = choice or os.environ.get("POLYMODAL_CPU_PATH", "auto")
    if choice not in ("auto", "packed", "plain"):
        raise ValueError(f"cpu_path {choice!r} is not one of auto, packed, plain")
    if choice == "auto":
        return choose(model)
    if choice == "packed" and pack_linears(model):
        return "packed"
    return "plain"
