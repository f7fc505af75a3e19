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


# post-op name → (oneDNN attr, scalars, algorithm) of ``_linear_pointwise`` and the same op in PyTorch
POST_OPS = {
    "gelu": (("gelu", [], "none"), F.gelu),
    "gelu_tanh": (("gelu", [], "tanh"), lambda y: F.gelu(y, approximate="tanh")),
    "relu": (("relu", [], ""), F.relu),
    "swish": (("swish", [], ""), F.silu),
}


class PackedLinear(nn.Module):
    """``nn.Linear`` for inference on CPU: x [..., in] → [..., out] through oneDNN with the weight
    prepacked for ``batch_hint`` rows. fp32 and bf16 (the packed copy follows the weight's dtype).

    Optionally ``post_op(scale · linear(in_scale · x))`` in one oneDNN call (the scales are folded
    into the packed weight): :func:`fuse_activations` uses this to run an MLP's activation inside
    its first GEMM. Off the packed path (autograd, autocast, another device) the same function is
    computed with PyTorch ops."""

    def __init__(self, linear: nn.Linear, batch_hint: int = 1024, post_op: str | None = None, scale: float = 1.0,
                 in_scale: float = 1.0):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.batch_hint = batch_hint
        self.post_op, self.scale, self.in_scale = post_op, scale, in_scale
        self.register_buffer("packed", self._pack(), persistent=False)

    def _pack(self) -> torch.Tensor:
        with torch.no_grad():
            w = self.weight.detach()
            if self.scale * self.in_scale != 1.0:
                w = w * (self.scale * self.in_scale)
            try:
                return torch.ops.mkldnn._reorder_linear_weight(w, self.batch_hint)
            except RuntimeError as e:  # a CPU without oneDNN's bf16 GEMMs (no avx512bw/vl/dq, no avx_ne_convert)
                if w.dtype != torch.bfloat16 or "needs the cpu support" not in str(e):
                    raise
                # A placeholder of another dtype: bf16 inputs then take the plain path in ``forward``.
                return torch.empty(0)

    def fuse(self, post_op: str | None, scale: float = 1.0, in_scale: float = 1.0) -> None:
        """Set the fused post-op and scales (see the class docstring) and repack."""
        if post_op is not None and post_op not in POST_OPS:
            raise ValueError(f"post-op {post_op!r} is not one of {sorted(POST_OPS)}")
        self.post_op, self.scale, self.in_scale = post_op, scale, in_scale
        self.repack()

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
                or torch.is_autocast_enabled("cpu"):  # training, autocast or another device: the plain path
            y = F.linear(x * self.in_scale if self.in_scale != 1.0 else x, self.weight, self.bias)
            y = y * self.scale if self.scale != 1.0 else y
            return POST_OPS[self.post_op][1](y) if self.post_op else y
        bias = self.bias * self.scale if self.bias is not None and self.scale != 1.0 else self.bias
        attr, scalars, algorithm = POST_OPS[self.post_op][0] if self.post_op else ("none", [], "")
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, bias, attr, scalars, algorithm)

    def extra_repr(self) -> str:
        fused = f", then {self.post_op}" if self.post_op else ""
        scaled = f", scales {self.scale:g}/{self.in_scale:g}" if self.scale != 1.0 or self.in_scale != 1.0 else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, oneDNN prepacked{fused}{scaled}"


def pack_linears(model: nn.Module, batch_hint: int = 1024, fuse: bool = True) -> int:
    """Replace every ``nn.Linear`` of ``model`` by a :class:`PackedLinear` sharing its parameters
    (in place) and, with ``fuse``, run each MLP's activation inside its first GEMM
    (:func:`fuse_activations`); returns how many linears were replaced (0 without oneDNN)."""
    if not available():
        return 0
    count = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, name, PackedLinear(child, batch_hint))
                count += 1
    if fuse:
        fuse_activations(model)
    return count


QUICK_GELU_ALPHA = 1.702


def fuse_activations(model: nn.Module) -> int:
    """Every :class:`~polymodal.layers.mlp.Mlp` whose linears are packed computes its activation as
    the first GEMM's post-op (one pass over the hidden activations instead of up to three); returns
    how many. GELU (erf or tanh) and ReLU are oneDNN post-ops as they are; QuickGELU, x·σ(1.702x),
    is swish(1.702·y)/1.702: fc1's packed weight and bias are scaled by 1.702 and fc2's by 1/1.702.
    Parameters and state dict are untouched."""
    from .mlp import Mlp, QuickGELU

    fused = 0
    for m in model.modules():
        if not (isinstance(m, Mlp) and isinstance(m.fc1, PackedLinear) and isinstance(m.fc2, PackedLinear)):
            continue
        if isinstance(m.act, QuickGELU):
            m.fc1.fuse("swish", scale=QUICK_GELU_ALPHA)
            m.fc2.fuse(m.fc2.post_op, in_scale=1 / QUICK_GELU_ALPHA)
        elif isinstance(m.act, nn.GELU):
            m.fc1.fuse("gelu" if m.act.approximate == "none" else "gelu_tanh")
        elif isinstance(m.act, nn.ReLU):
            m.fc1.fuse("relu")
        else:
            continue
        m.act = nn.Identity()
        fused += 1
    return fused
