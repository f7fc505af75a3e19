"""Read a checkpoint file or folder into a flat ``{key: tensor}`` dict, never with full pickle.

* ``.safetensors`` → safetensors.
* ``.bin`` / ``.pt`` / ``.pth`` → ``torch.load(weights_only=True)``.
* OpenAI's TorchScript ``.pt`` archives → ``torch.jit.load``, keeping only the state dict; only
  inside ``with trust_torchscript():`` (the CLI's ``--trust-torchscript``), because a TorchScript
  archive carries code that ``torch.jit.load`` compiles. Convert it once to safetensors with
  ``polymodal convert`` and load that instead.
* ``.pkl`` (detectron2's model-zoo pickles: ``{"model": {name: numpy array}}``) → a restricted unpickler
  that builds plain containers and numpy arrays and refuses anything else by name.
* A folder → the first known weights file inside it.
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
import warnings
import zipfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np
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


# What a pickle of numpy arrays may ask for (numpy ≥ 2 moved numpy.core to numpy._core; both spellings occur).
_PICKLE_ALLOWED = {
    (core, name) for core in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
     ("numpy._core.numeric", "_frombuffer"), ("collections", "OrderedDict")}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}; only containers and numpy arrays are read")
        module = module.replace("numpy.core.", "numpy._core.") if hasattr(np, "_core") else module
        return getattr(importlib.import_module(module), name)


def _read_array_pickle(file: Path) -> dict:
    try:
        with open(file, "rb") as f:
            data = _ArraysOnly(f, encoding="latin1").load()
    except Exception as e:  # noqa: BLE001 — a malformed pickle fails in many ways; each is this file's error
        raise CheckpointError(f"cannot read checkpoint {file}: {type(e).__name__}: {e}") from e
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict):
        raise CheckpointError(f"{file} does not hold a dict of arrays")
    if "blobs" in data:
        raise CheckpointError(f"{file} is a Caffe2 / Detectron1 pickle (blob names); convert it with detectron2 first")
    out = {}
    for key, value in data.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
            out[str(key)] = torch.from_numpy(np.ascontiguousarray(value))
        elif key.endswith("_momentum") or not isinstance(value, np.ndarray):
            continue  # optimiser state and metadata beside the weights
        else:
            raise CheckpointError(f"{file}: {key} is an array of {value.dtype}, not numbers")
    return out


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
    for pattern in ("*.safetensors", "*.pt", "*.pth", "*.bin", "*.pkl"):
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
        elif file.suffix == ".pkl":
            sd = _read_array_pickle(file)
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
    except CheckpointError:
        raise
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
