"""Where a run's numbers go: ``metrics.jsonl`` always, TensorBoard event files when asked."""

from __future__ import annotations

import json
from pathlib import Path

from .config import ConfigError


class MetricsLog:
    """Append records ``{"step": s, name: value, …}`` to ``out/metrics.jsonl`` and, with
    ``tensorboard=True``, as scalars to ``out/tensorboard`` (``torch.utils.tensorboard``)."""

    def __init__(self, out: Path, tensorboard: bool = False):
        self.path = out / "metrics.jsonl"
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError("train.tensorboard=true needs the tensorboard package "
                                  "(pip install 'polymodal[tensorboard]')") from e
            self.writer = SummaryWriter(str(out / "tensorboard"))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for name, value in record.items():
                if name != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(name, value, record["step"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
