"""Readers for official checkpoint layouts, strict loading, and our own safetensors format."""

from .files import CheckpointError, read_state_dict
from .loading import (LoadReport, apply_state_dict, describe, detect_layout, infer_config, load_checkpoint,
                      load_weights_into, save)

__all__ = [
    "CheckpointError", "LoadReport", "apply_state_dict", "describe", "detect_layout", "infer_config",
    "load_checkpoint", "load_weights_into", "read_state_dict", "save",
]
