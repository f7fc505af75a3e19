"""Retrieval and classification metrics over embeddings."""

from __future__ import annotations

import torch


def _ranks(scores: torch.Tensor) -> torch.Tensor:
    """[Q, G] scores with the right answer of query i at column i → 1-based rank of each answer."""
    right = scores.diagonal().unsqueeze(1)
    return (scores > right).sum(dim=1) + 1


def retrieval_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict:
    """Image ↔ text retrieval for paired rows: image_emb [N, E], text_emb [N, E] (normalised).

    Returns text→image and image→text Recall@k and mean rank (ties count against the answer)."""
    if image_emb.shape != text_emb.shape:
        raise ValueError(f"paired embeddings must have the same shape, got {tuple(image_emb.shape)} and "
                         f"{tuple(text_emb.shape)}")
    scores = text_emb.float() @ image_emb.float().T
    out = {}
    for name, s in (("text_to_image", scores), ("image_to_text", scores.T)):
        ranks = _ranks(s)
        for k in ks:
            out[f"{name}_R@{k}"] = (ranks <= k).float().mean().item()
        out[f"{name}_mean_rank"] = ranks.float().mean().item()
    return out


def accuracy(image_emb: torch.Tensor, class_emb: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Top-k accuracy of nearest-class prediction: image_emb [N, E], class_emb [C, E], labels [N]."""
    top = (image_emb.float() @ class_emb.float().T).topk(min(k, class_emb.shape[0]), dim=1).indices
    return (top == labels.unsqueeze(1)).any(dim=1).float().mean().item()
