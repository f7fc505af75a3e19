"""Checkpoint layouts as registered objects, tried from the most to the least specific.

A layout knows one way of naming a family's tensors (OpenAI CLIP, HF BERT, ImageBind, …):

* ``match(keys, folder)`` — is this state dict (and the folder it came from) in my layout?
* ``convert(state_dict)`` — the same tensors under our keys and shapes;
* ``infer_config(state_dict, config_dict, folder)`` — the architecture, from a config file beside the
  weights (``config_dict``, already read) or from the tensor shapes.

Each lives in its own file under :mod:`polymodal.weights` and registers itself with
:func:`register_layout`; every module there is imported before the first detection, so a new
layout is a new file. A layout of a family we cannot build yet is registered with
``supported=False``: it still names the family, and loading it says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..plugins import import_all
from .files import CheckpointError

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Layout:
    """One checkpoint layout. ``priority``: higher is tried first (more specific layouts, e.g.
    VisualBERT, whose keys also look like BERT's, outrank the generic ones)."""

    name: str
    family: str | None  # the family it holds (registered, or not built yet); None: named by its config.json
    description: str  # for people: "Hugging Face BertModel", "fairseq MMPT VideoCLIP"
    match: Callable[[set[str], Path | None], bool]
    priority: int
    convert: Callable[[StateDict], StateDict] | None = None
    infer_config: Callable[[StateDict, dict | None, Path | None], object] | None = None
    supported: bool = True

    def require_supported(self, source: str) -> None:
        if not self.supported:
            raise CheckpointError(f"{source} is a {self.description} checkpoint ({self.family} family, "
                                  f"{self.name} layout); not supported yet")


LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    if layout.name in LAYOUTS:
        raise ValueError(f"layout {layout.name!r} is already registered")
    LAYOUTS[layout.name] = layout
    return layout


def layouts() -> list[Layout]:
    """Every registered layout in detection order (most specific first)."""
    import_all("polymodal.weights")
    return sorted(LAYOUTS.values(), key=lambda layout: (-layout.priority, layout.name))


def find_layout(keys, folder: str | Path | None = None) -> Layout:
    """The first layout (most specific first) whose ``match`` accepts ``keys``."""
    keys = set(keys)
    folder = Path(folder) if folder is not None else None
    for layout in layouts():
        if layout.match(keys, folder):
            return layout
    raise CheckpointError(f"unrecognised checkpoint layout; first keys: {sorted(keys)[:5]}")


def detect_layout(keys, folder: str | Path | None = None) -> str:
    """Name of a state dict's layout (see :func:`find_layout`)."""
    return find_layout(keys, folder).name


def any_key(keys: set[str], *, prefix: str | tuple[str, ...] = (), contains: str | None = None,
            suffix: str | tuple[str, ...] = ()) -> bool:
    """Whether some key starts with ``prefix`` / contains ``contains`` / ends with ``suffix``."""
    return any((not prefix or k.startswith(prefix)) and (contains is None or contains in k)
               and (not suffix or k.endswith(suffix)) for k in keys)
