"""Read a checkpoint file or folder into a flat ``{key: tensor}`` dict, never with full pickle.

* ``.safetensors`` → safetensors.
* ``.bin`` / ``.pt`` / ``.pth`` → ``torch.load(weights_only=True)``.
* OpenAI's TorchScript ``.pt`` archives → ``torch.jit.load``, keeping only the state dict; only
  inside ``with trust_torchscript():`` (the CLI's ``--trust-torchscript``), because a TorchScript
  archive carries code that ``torch.jit.load`` compiles. Convert it once to safetensors with
  ``polymodal convert`` and load that instead.
* A folder → the first known weights file inside it.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
import zipfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

WEIGHT_FILES = (
    "model.safetensors", "weights.safetensors", "open_clip_model.safetensors", "pytorch_model.bin",
    "open_clip_pytorch_model.bin", "model.pt", "model.bin",
)


class CheckpointError(ValueError):
    """A checkpoint could not be read or does not fit the model; the message names file and keys."""


_TRUST_TORCHSCRIPT: ContextVar[bool] = ContextVar("trust_torchscript", default=False)


@contextmanager
def trust_torchscript(trust: bool = True):
    """Allow TorchScript archives (which hold code) to be read inside this block."""
    token = _TRUST_TORCHSCRIPT.set(trust)
    try:
        yield
    finally:
        _TRUST_TORCHSCRIPT.reset(token)


def find_weights_file(path: str | Path) -> Path:
    """A weights file: ``path`` itself, or the first of :data:`WEIGHT_FILES` (then any ``*.safetensors``,
    ``*.pt``, ``*.bin``) inside the folder ``path``."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_file():
        return path
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    for pattern in ("*.safetensors", "*.pt", "*.pth", "*.bin"):
        found = sorted(path.glob(pattern))
        if found:
            return found[0]
    raise CheckpointError(f"no weights file in folder {path} (looked for {', '.join(WEIGHT_FILES)})")


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint as a flat dict on the CPU.

    Unwraps training checkpoints (``{"state_dict": ...}``, ``{"model": ...}``) and the
    ``module.`` prefix DistributedDataParallel adds.
    """
    file = find_weights_file(path)
    try:
        if file.suffix == ".safetensors":
            sd = load_file(str(file))
        elif _is_torchscript(file):
            if not _TRUST_TORCHSCRIPT.get():
                raise CheckpointError(
                    f"{file} is a TorchScript archive, which holds code that loading it would compile; "
                    "if you trust its source, pass --trust-torchscript (Python: `with trust_torchscript():`) "
                    "or convert it once with `polymodal convert --trust-torchscript` and use the safetensors copy")
            with warnings.catch_warnings():  # torch marks TorchScript deprecated; OpenAI still ships it
                warnings.simplefilter("ignore", DeprecationWarning)
                sd = dict(torch.jit.load(str(file), map_location="cpu").state_dict())
        else:
            sd = torch.load(str(file), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, SafetensorError, RuntimeError, OSError, EOFError, zipfile.BadZipFile,
            ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {file}: {type(e).__name__}: {str(e).splitlines()[0]}") from e
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{file} does not hold a state dict of tensors")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
