"""Feed-forward block and the activations the model families need."""

from __future__ import annotations

import torch
from torch import nn


class QuickGELU(nn.Module):
    """x · sigmoid(1.702 x): the GELU approximation OpenAI's CLIP checkpoints were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)

    @staticmethod
    def inplace(x: torch.Tensor) -> torch.Tensor:
        """Overwrite ``x`` (no autograd): one temporary instead of three."""
        return x.mul_(torch.sigmoid(x * 1.702))


ACTIVATIONS = {
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "quick_gelu": QuickGELU,
    "relu": nn.ReLU,
}


def make_activation(name: str) -> nn.Module:
    """Activation module by name: ``gelu`` (exact erf), ``gelu_tanh``, ``quick_gelu``, ``relu``."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None


class Mlp(nn.Module):
    """fc1 → activation → dropout → fc2 → dropout; [..., D] → [..., D]."""

    def __init__(self, dim: int, hidden: int, act: str = "gelu", drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = make_activation(act)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if isinstance(self.act, QuickGELU) and not torch.is_grad_enabled():
            h = QuickGELU.inplace(h)  # h is our fresh fc1 output; large CPU allocations are slow
        else:
            h = self.act(h)
        return self.drop(self.fc2(self.drop(h)))


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``p`` (training only)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
