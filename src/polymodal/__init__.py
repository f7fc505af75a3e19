"""polymodal: multimodal transformers — stems → trunks → heads — that load official checkpoints."""

from . import models  # noqa: F401  (registers every family and preset)
from .factory import create
from .registry import PRESETS, preset
from .weights import load_checkpoint as load
from .weights import save

__version__ = "0.1.0"
__all__ = ["PRESETS", "create", "load", "preset", "save"]
