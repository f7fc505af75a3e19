"""Where models and tensors live: one device setting (``auto|cpu|cuda|cuda:N``) for every command.

* :func:`resolve` turns the setting into a ``torch.device`` (``auto``: CUDA when present; under
  torchrun each process takes its ``LOCAL_RANK``'s GPU);
* :func:`to_device` moves a batch (nested dicts / lists / tuples of tensors) there, asynchronously
  from pinned memory on CUDA;
* :func:`host_io` wraps a model so that code written for CPU tensors (evaluations, tasks) runs it on
  its own device: tensor arguments go to the model's device, tensor results come back to the host.

Everything the library creates inside a forward pass follows its inputs (``device=x.device``);
``tests/test_devices.py`` checks this for every training kind and the encoders with the model on
``meta``, where a tensor made on the CPU by mistake is caught.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import torch
from torch import nn

CHOICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """A device setting that cannot be honoured here (names the setting)."""


def resolve(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` (also ``meta``, for tests) → a device.

    ``cuda`` without an index under torchrun is ``cuda:$LOCAL_RANK``; asking for CUDA where there
    is none is an error, not a silent fall-back to the CPU."""
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise DeviceError(f"device {name!r} is not one of {CHOICES} (or cuda:N)") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r}: this PyTorch ({torch.__version__}) sees no CUDA GPU; "
                              "use --device cpu, or install a CUDA build of torch")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r}: there are only {torch.cuda.device_count()} GPU(s)")
    elif device.type not in ("cpu", "meta"):
        raise DeviceError(f"device {name!r} is not one of {CHOICES} (or cuda:N)")
    return device


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (CPU for a model with neither)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def to_device(obj: Any, device: torch.device, non_blocking: bool | None = None) -> Any:
    """``obj`` with every tensor in it (dicts, lists, tuples, dataclasses) on ``device``; other
    values unchanged. CPU → CUDA copies are asynchronous (pinned first, so they can overlap)."""
    if isinstance(obj, torch.Tensor):
        if obj.device == device:
            return obj
        asynchronous = device.type == "cuda" and obj.device.type == "cpu" if non_blocking is None else non_blocking
        if asynchronous and not obj.is_pinned():
            obj = obj.pin_memory()
        return obj.to(device, non_blocking=asynchronous)
    if isinstance(obj, dict):
        return type(obj)((k, to_device(v, device, non_blocking)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a NamedTuple
        return type(obj)(*(to_device(v, device, non_blocking) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device, non_blocking) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: to_device(getattr(obj, f.name), device, non_blocking)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


class HostIO:
    """``model`` seen from the host: calling it or any of its methods moves tensor arguments to the
    model's device and tensor results to ``host`` (the CPU). Attributes pass through, so evaluation
    code written for a CPU model (``model.config``, ``model.encode_text(ids, mask)``) runs unchanged
    on a GPU model. ``host_io(host_io(m))`` is ``host_io(m)``."""

    def __init__(self, model: nn.Module, host: torch.device | str = "cpu"):
        self.__dict__["_model"], self.__dict__["_host"] = model, torch.device(host)

    @property
    def module(self) -> nn.Module:
        return self._model

    def _bridge(self, fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            device = model_device(self._model)
            args, kwargs = to_device((args, kwargs), device)
            return to_device(fn(*args, **kwargs), self._host)
        return call

    def __call__(self, *args, **kwargs):
        return self._bridge(self._model)(*args, **kwargs)

    def __getattr__(self, name: str):
        value = getattr(self._model, name)
        if isinstance(value, nn.Module):  # a submodule (model.visual, model.encoders): bridged too
            return HostIO(value, self._host)
        if callable(value) and not isinstance(value, type) and hasattr(value, "__self__"):
            return self._bridge(value)  # a bound method: forward, embed, encode_video, …
        return value

    def __getitem__(self, key):  # ModuleDict / ModuleList / Sequential entries
        value = self._model[key]
        return HostIO(value, self._host) if isinstance(value, nn.Module) else value

    def __iter__(self):
        return (HostIO(m, self._host) if isinstance(m, nn.Module) else m for m in self._model)

    def __len__(self) -> int:
        return len(self._model)

    def __contains__(self, key) -> bool:
        return key in self._model

    def __setattr__(self, name: str, value) -> None:
        setattr(self._model, name, value)


def host_io(model: nn.Module | HostIO, host: torch.device | str = "cpu") -> HostIO:
    """See :class:`HostIO`."""
    return model if isinstance(model, HostIO) else HostIO(model, host)


def unwrap(model: nn.Module | HostIO) -> nn.Module:
    """The module behind a :class:`HostIO` (or ``model`` itself)."""
    return model.module if isinstance(model, HostIO) else model


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX-BF16, from /proc/cpuinfo). Without
    it, PyTorch emulates bf16 and CPU training in bf16 runs slower than fp32 (1.5× on an Ice Lake
    Xeon: 36 s vs 24 s for 12 CLIP steps of batch 128)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags

