"""FSDP for towers too large to replicate on every process (``train.fsdp=true`` under torchrun).

PyTorch's ``fully_shard`` (FSDP2): every transformer block is its own unit — its parameters are
gathered just before it runs and freed after — and the root unit holds the rest (stems, norms,
projections, temperature). Checkpoints stay in our ordinary layout: the full state dict is
gathered to CPU, so a sharded run resumes an unsharded checkpoint and vice versa.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from ..layers.blocks import Transformer

FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def _scalars(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.dim() == 0]


def shard(model: nn.Module, device: torch.device | None = None) -> nn.Module:
    """Shard ``model`` (already on ``device``) in place across the default process group; returns it.

    Scalar parameters (CLIP's temperature — a 0-d tensor in every checkpoint layout, which
    ``fully_shard`` cannot split) stay replicated: call :func:`reduce_replicated_grads` after backward."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    # The mesh names the device explicitly: FSDP's default is the machine's accelerator, which is
    # wrong for a CPU (Gloo) run on a machine that has a GPU.
    mesh = init_device_mesh((device or torch.device("cpu")).type, (dist.get_world_size(),))
    for stack in [m for m in model.modules() if isinstance(m, Transformer)]:
        for block in stack.blocks:
            fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh, ignored_params=set(_scalars(model)))
    return model


def reduce_replicated_grads(model: nn.Module) -> None:
    """Average the gradients of the replicated scalar parameters across processes (as FSDP does
    for the sharded ones)."""
    for p in _scalars(model):
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """(model, optimiser) state dicts, unsharded, on CPU. Every process must call it."""
    return get_model_state_dict(model, options=FULL), get_optimizer_state_dict(model, optimizer, options=FULL)


def full_model_state(model: nn.Module) -> dict:
    """The unsharded model state dict on CPU. Every process must call it."""
    return get_model_state_dict(model, options=FULL)


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer, model_state: dict, optim_state: dict) -> None:
    """Load unsharded state dicts (as :func:`full_state` gives) into a sharded model and its optimiser."""
    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, model_state, options=options)
    set_optimizer_state_dict(model, optimizer, optim_state, options=options)
