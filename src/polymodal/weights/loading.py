"""Detect a checkpoint's layout, convert it to our keys and load it strictly.

Entry points:

* :func:`load_checkpoint` (``polymodal.load``) — build the model a checkpoint describes.
* :func:`load_weights_into` — fill an existing model (``polymodal.create(preset, weights=...)``).
* :func:`save` — our own format: ``model.safetensors`` + ``config.json``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from .files import CheckpointError, find_weights_file, read_state_dict
from ..fileio import atomic_write
from .layout import Layout, find_layout
from .licence import folder_licence
from .ours import FORMAT


@dataclass
class LoadReport:
    layout: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def _folder(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], Layout]:
    """The raw tensors at ``path`` and their layout."""
    raw = read_state_dict(path)
    return raw, find_layout(raw, _folder(Path(path)))


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


def check_family(model: nn.Module, layout: Layout, source: str) -> None:
    """Refuse, by name, a checkpoint of one family (e.g. BERT) for a model of another (e.g. ViT)."""
    from ..registry import family_of

    layout.require_supported(source)
    config = getattr(model, "config", None)
    try:
        family = family_of(config)
    except TypeError:
        return
    if layout.family is not None and layout.family != family:
        raise CheckpointError(f"{source} is a {layout.name} checkpoint ({layout.family}); it cannot fill a {family} model")


def load_weights_into(model: nn.Module, path: str | Path, *, strict: bool = True) -> LoadReport:
    """Load a checkpoint in any supported layout into ``model`` (in place)."""
    raw, layout = read_checkpoint(path)
    check_family(model, layout, str(path))
    return apply_state_dict(model, layout.convert(raw), strict=strict, source=str(path), layout=layout.name)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e


def _folder_config(path: Path) -> dict | None:
    folder = _folder(path)
    return _read_json(folder / "config.json") or _read_json(folder / "open_clip_config.json")


def infer_config(path: str | Path, sd: dict[str, torch.Tensor] | None = None, layout: Layout | None = None,
                 config_dict: dict | None = None):
    """The model config a checkpoint describes: from our config.json, a HF or open_clip config
    beside it (or given as ``config_dict``), else inferred from tensor shapes."""
    path = Path(path)
    if sd is None or layout is None:
        sd, layout = read_checkpoint(path)
    layout.require_supported(str(path))
    cfg = config_dict if config_dict is not None else _folder_config(path)
    if cfg is not None and "hf_config" in cfg:  # our fixtures keep the HF config under this key
        cfg = cfg["hf_config"]
    try:
        return layout.infer_config(sd, cfg, _folder(path))
    except KeyError as e:
        raise CheckpointError(f"{path} ({layout.name} layout) lacks {e}, needed to infer the architecture; "
                              "pass config=<preset or config>") from e


def check_size(config, raw: dict, path, strict: bool = True) -> None:
    """Refuse a config that describes a much larger model than the checkpoint's tensors hold (a hostile
    config.json: 10⁶-wide MLPs cost gigabytes before any weight is compared), counted on the meta
    device, where nothing is allocated."""
    from ..registry import build, check_ranges

    try:
        check_ranges(config, f"{path}: config")
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    try:
        with torch.device("meta"):
            probe = build(config)
    except Exception:  # noqa: BLE001 — a family whose construction needs real tensors: the real build checks
        return
    wanted = sum(p.numel() for p in probe.parameters())
    held = sum(t.numel() for t in raw.values() if isinstance(t, torch.Tensor)) if isinstance(raw, dict) else 0
    if strict and held and wanted > 2 * held + 1_000_000:
        raise CheckpointError(f"{path}: its config describes a model of {wanted:,} parameters, but the checkpoint "
                              f"holds {held:,} numbers: the config does not belong to these weights")


def load_checkpoint(path: str | Path, *, config=None, strict: bool = True) -> nn.Module:
    """Build and load the model stored at ``path`` (file or folder), in eval mode.

    ``config`` overrides the inferred architecture (a preset name, a config object, or an
    open_clip/HF config dict).
    """
    from ..registry import build, preset

    raw, layout = read_checkpoint(path)
    layout.require_supported(str(path))
    if isinstance(config, str):
        config = preset(config)
    elif config is None or isinstance(config, dict):
        config = infer_config(path, raw, layout, config)
    check_size(config, raw, path, strict)
    model = build(config)
    check_family(model, layout, str(path))
    apply_state_dict(model, layout.convert(raw), strict=strict, source=str(path), layout=layout.name)
    return model.eval()


def save(model: nn.Module, folder: str | Path, processor=None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` into ``folder`` (created), atomically per file,
    and ``processor_config.json``: ``processor``, else the family's official processing (if any)."""
    from ..registry import config_to_dict, family

    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"{type(model).__name__} has no .config; build it with polymodal.create")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(folder / "model.safetensors", lambda p: save_file(tensors, p, metadata={"format": FORMAT}))
    meta = {"format": FORMAT, "version": 2, **config_to_dict(config)}
    atomic_write(folder / "config.json", lambda p: Path(p).write_text(json.dumps(meta, indent=1)))
    processor = processor if processor is not None else (family(config).processor or (lambda c: None))(config)
    if processor is not None:
        processor.save(folder)
    return folder


def describe(path: str | Path) -> dict:
    """What ``polymodal info`` prints: file, layout, family, architecture and parameter count. A
    checkpoint of a family not built yet is described by its layout, with ``supported`` False."""
    from ..registry import config_to_dict

    file = find_weights_file(path)
    raw, layout = read_checkpoint(path)
    n_params = sum(v.numel() for v in raw.values() if v.is_floating_point())
    d = {"file": str(file), "layout": layout.name, "description": layout.description, "supported": layout.supported,
         "family": layout.family, "tensors": len(raw), "parameters": n_params,
         "licence": folder_licence(_folder(Path(path)))}
    if layout.supported:
        d.update(config_to_dict(infer_config(path, raw, layout)))
    return d
