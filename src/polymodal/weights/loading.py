"""Detect a checkpoint's layout, convert it to our keys and load it strictly.

Entry points:

* :func:`load_checkpoint` (``polymodal.load``) — build the model a checkpoint describes.
* :func:`load_weights_into` — fill an existing model (``polymodal.create(preset, weights=...)``).
* :func:`save` — our own format: ``model.safetensors`` + ``config.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from . import hf_bert, hf_clip, hf_vit, imagebind, openai_clip
from .files import CheckpointError, find_weights_file, read_state_dict

FORMAT = "polymodal"

# Layouts of other model families, recognised only to say what a checkpoint is.
FOREIGN_LAYOUTS = {
    "layoutlmv2.": "LayoutLMv2",
    "layoutlmv3.": "LayoutLMv3", "visual_bert.": "VisualBERT", "v_embeddings.": "ViLBERT",
    "mmmodel.": "VideoCLIP (fairseq)", "visual.trunk.": "open_clip timm-tower CLIP",
}
FAMILY_OF_LAYOUT = {"polymodal": None, "openai-clip": "clip", "hf-clip": "clip", "hf-vit": "vit", "hf-bert": "bert",
                    "imagebind": "imagebind"}


@dataclass
class LoadReport:
    layout: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def detect_layout(keys) -> str:
    """Name of a state dict's key layout: ``polymodal``, ``openai-clip``, ``hf-clip``, ``hf-vit``,
    ``hf-bert``, ``imagebind``; raises :class:`CheckpointError` naming the family for other known layouts."""
    keys = list(keys)
    if hf_clip.is_hf_clip(keys):
        return "hf-clip"
    if hf_vit.is_hf_vit(keys):
        return "hf-vit"
    if hf_bert.is_hf_bert(keys):
        return "hf-bert"
    if imagebind.is_imagebind(keys):
        return "imagebind"
    for prefix, family in FOREIGN_LAYOUTS.items():
        if any(k.startswith(prefix) for k in keys):
            raise CheckpointError(f"detected a {family} checkpoint (keys start with {prefix!r}); "
                                  "this loader reads CLIP, ViT, BERT and ImageBind layouts")
    if openai_clip.is_openai_clip(keys):
        return "openai-clip"
    if any(k.endswith("transformer.blocks.0.attn.qkv.weight") or k.endswith("transformer.blocks.0.attn.q.weight")
           for k in keys):
        return "polymodal"
    raise CheckpointError(f"unrecognised checkpoint layout; first keys: {keys[:5]}")


def to_polymodal(sd: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    converters = {"openai-clip": openai_clip.to_polymodal, "hf-clip": hf_clip.to_polymodal,
                  "hf-vit": hf_vit.to_polymodal, "hf-bert": hf_bert.to_polymodal,
                  "imagebind": imagebind.to_polymodal}
    return converters[layout](sd) if layout in converters else sd


def _short(keys: list[str], n: int = 12) -> str:
    return ", ".join(keys[:n]) + (f", … ({len(keys) - n} more)" if len(keys) > n else "")


def apply_state_dict(model: nn.Module, sd: dict[str, torch.Tensor], *, strict: bool = True,
                     source: str = "checkpoint", layout: str = "polymodal") -> LoadReport:
    """Copy ``sd`` (our keys) into ``model``. Shape mismatches are always an error naming the key
    and both shapes; missing/unexpected keys are an error when ``strict``, else a warning."""
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    mismatched = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in sd and sd[k].shape != own[k].shape]
    if mismatched:
        raise CheckpointError(f"{source} ({layout} layout): shape mismatch for {'; '.join(mismatched[:8])}")
    problems = []
    if missing:
        problems.append(f"missing keys: {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_short(unexpected)}")
    if problems and strict:
        raise CheckpointError(f"{source} ({layout} layout) does not fit {type(model).__name__}: "
                              + "; ".join(problems) + " (pass strict=False to load anyway)")
    if problems:
        warnings.warn(f"{source}: " + "; ".join(problems), stacklevel=2)
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return LoadReport(layout, missing, unexpected)


def check_family(model: nn.Module, layout: str, source: str) -> None:
    """Refuse, by name, a checkpoint of one family (e.g. BERT) for a model of another (e.g. ViT)."""
    from ..registry import FAMILIES

    expected = FAMILY_OF_LAYOUT[layout]
    config = getattr(model, "config", None)
    family = FAMILIES[type(config)][0] if type(config) in FAMILIES else None
    if expected is not None and family is not None and expected != family:
        raise CheckpointError(f"{source} is a {layout} checkpoint ({expected}); it cannot fill a {family} model")


def load_weights_into(model: nn.Module, path: str | Path, *, strict: bool = True) -> LoadReport:
    """Load a checkpoint in any supported layout into ``model`` (in place)."""
    raw = read_state_dict(path)
    layout = detect_layout(raw)
    check_family(model, layout, str(path))
    return apply_state_dict(model, to_polymodal(raw, layout), strict=strict, source=str(path), layout=layout)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e


def _folder_config(path: Path) -> dict | None:
    folder = path if path.is_dir() else path.parent
    return _read_json(folder / "config.json") or _read_json(folder / "open_clip_config.json")


def infer_config(path: str | Path, sd: dict[str, torch.Tensor] | None = None, layout: str | None = None,
                 config_dict: dict | None = None):
    """The model config a checkpoint describes: from our config.json, a HF or open_clip config
    beside it (or given as ``config_dict``), else inferred from tensor shapes."""
    from ..registry import config_from_dict

    path = Path(path)
    sd = read_state_dict(path) if sd is None else sd
    layout = layout or detect_layout(sd)
    cfg = config_dict if config_dict is not None else _folder_config(path)
    if cfg is not None and cfg.get("format") == FORMAT:
        return config_from_dict(cfg)
    if cfg is not None and "hf_config" in cfg:
        cfg = cfg["hf_config"]
    if layout == "openai-clip":
        return openai_clip.infer_config(sd, cfg if cfg and ("model_cfg" in cfg or "embed_dim" in cfg) else None)
    if layout == "hf-clip":
        if not cfg or "vision_config" not in cfg:
            raise CheckpointError(f"{path}: a HF CLIPModel checkpoint needs its config.json beside it")
        return hf_clip.config_from_hf(cfg)
    if layout == "hf-vit":
        return hf_vit.config_from_hf(cfg, sd)
    if layout == "imagebind":
        return imagebind.infer_config(sd, cfg)
    if layout == "hf-bert":
        folder = path if path.is_dir() else path.parent
        return hf_bert.config_from_hf(cfg, sd, hf_bert.sentence_pooling(folder))
    raise CheckpointError(f"{path}: weights in our layout need the config.json written by polymodal.save")


def load_checkpoint(path: str | Path, *, config=None, strict: bool = True) -> nn.Module:
    """Build and load the model stored at ``path`` (file or folder), in eval mode.

    ``config`` overrides the inferred architecture (a preset name, a config object, or an
    open_clip/HF config dict).
    """
    from ..registry import build, preset

    raw = read_state_dict(path)
    layout = detect_layout(raw)
    if isinstance(config, str):
        config = preset(config)
    elif config is None or isinstance(config, dict):
        try:
            config = infer_config(path, raw, layout, config)
        except KeyError as e:
            raise CheckpointError(f"{path} ({layout} layout) lacks {e}, needed to infer the architecture; "
                                  "pass config=<preset or config>") from e
    model = build(config)
    check_family(model, layout, str(path))
    apply_state_dict(model, to_polymodal(raw, layout), strict=strict, source=str(path), layout=layout)
    return model.eval()


def save(model: nn.Module, folder: str | Path) -> Path:
    """Write ``model.safetensors`` + ``config.json`` into ``folder`` (created), atomically per file."""
    from ..registry import config_to_dict

    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"{type(model).__name__} has no .config; build it with polymodal.create")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(folder / "model.safetensors", lambda p: save_file(tensors, p, metadata={"format": FORMAT}))
    meta = {"format": FORMAT, "version": 1, **config_to_dict(config)}
    atomic_write(folder / "config.json", lambda p: Path(p).write_text(json.dumps(meta, indent=1)))
    return folder


def atomic_write(target: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temp file beside ``target``, then rename it over ``target``."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def describe(path: str | Path) -> dict:
    """What ``polymodal info`` prints: file, layout, family, architecture and parameter count."""
    from ..registry import config_to_dict

    file = find_weights_file(path)
    raw = read_state_dict(path)
    layout = detect_layout(raw)
    config = infer_config(path, raw, layout)
    n_params = sum(v.numel() for v in raw.values() if v.is_floating_point())
    return {"file": str(file), "layout": layout, **config_to_dict(config), "tensors": len(raw),
            "parameters": n_params}
