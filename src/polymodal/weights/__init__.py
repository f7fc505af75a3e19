"""Readers for official checkpoint layouts (one registered :class:`Layout` per file), strict
loading, and our own safetensors format."""

from .files import CheckpointError, read_state_dict, trust_torchscript
from .layout import LAYOUTS, Layout, detect_layout, find_layout, layouts, register_layout
from .loading import (LoadReport, apply_state_dict, describe, infer_config, load_checkpoint, load_weights_into,
                      read_checkpoint, save)

__all__ = [
    "CheckpointError", "LAYOUTS", "Layout", "LoadReport", "apply_state_dict", "describe", "detect_layout",
    "find_layout", "infer_config", "layouts", "load_checkpoint", "load_weights_into", "read_checkpoint",
    "read_state_dict", "register_layout", "save", "trust_torchscript",
]
