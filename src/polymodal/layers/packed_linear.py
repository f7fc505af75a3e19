"""Inference linears through oneDNN with prepacked weights.

``F.linear`` on CPU goes through MKL, which on AMD CPUs runs well below the machine's GEMM rate; oneDNN
with its weights reordered once into its blocked layout (what inductor's freezing does) is faster
(benchmarks/gemm_paths.py). :func:`pack_linears` swaps a model's ``nn.Linear`` modules for
:class:`PackedLinear` in place, for inference only: the packed copy is made from the weights at
packing time and is not updated by training.

The state dict is unchanged (``weight`` and ``bias`` stay parameters; the packed copy is a
non-persistent buffer), so a packed model saves and loads like the original.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def available() -> bool:
    """Whether this torch build has oneDNN's packed-linear ops."""
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


class PackedLinear(nn.Module):
    """``nn.Linear`` for inference on CPU: x [..., in] → [..., out] through oneDNN with the weight
    prepacked for ``batch_hint`` rows. fp32 and bf16 (the packed copy follows the weight's dtype)."""

    def __init__(self, linear: nn.Linear, batch_hint: int = 1024):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.batch_hint = batch_hint
        self.register_buffer("packed", self._pack(), persistent=False)

    def _pack(self) -> torch.Tensor:
        with torch.no_grad():
            return torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), self.batch_hint)

    def repack(self) -> None:
        """Re-make the packed copy after the weights (or their dtype) changed."""
        self.packed = self._pack()

    def _apply(self, fn, recurse=True):
        """``.to(dtype)`` / ``.bfloat16()``: the oneDNN-layout copy cannot be converted like a tensor,
        so it is set aside and packed again from the converted weight."""
        packed = self._buffers.pop("packed")
        try:
            out = super()._apply(fn, recurse)
        finally:
            self._buffers["packed"] = packed
        if self.weight.device.type == "cpu":
            self._buffers["packed"] = self._pack()
        return out

    def __deepcopy__(self, memo):
        """A copy packs its own weight (the oneDNN-layout tensor has no storage to copy)."""
        packed = self._buffers.pop("packed")
        try:
            new = self.__class__.__new__(self.__class__)
            memo[id(self)] = new
            for key, value in self.__dict__.items():
                new.__dict__[key] = copy.deepcopy(value, memo)
        finally:
            self._buffers["packed"] = packed
        new._buffers["packed"] = new._pack()
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or torch.is_grad_enabled() or x.dtype != self.packed.dtype \
                or torch.is_autocast_enabled("cpu"):
            return F.linear(x, self.weight, self.bias)  # training, autocast or another device: the plain path
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, oneDNN prepacked"


def pack_linears(model: nn.Module, batch_hint: int = 1024) -> int:
    """Replace every ``nn.Linear`` of ``model`` by a :class:`PackedLinear` sharing its parameters
    (in place); returns how many were replaced (0 when oneDNN is not available)."""
    if not available():
        return 0
    count = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, name, PackedLinear(child, batch_hint))
                count += 1
    return count
