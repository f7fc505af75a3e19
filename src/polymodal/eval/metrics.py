"""Retrieval and classification metrics over embeddings."""

from __future__ import annotations

import torch


def _ranks(scores: torch.Tensor) -> torch.Tensor:
    """[Q, G] scores with the right answer of query i at column i → 1-based rank of each answer."""
    right = scores.diagonal().unsqueeze(1)
    return (scores > right).sum(dim=1) + 1


def retrieval_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict:
    """Image ↔ text retrieval for paired rows: image_emb [N, E], text_emb [N, E] (normalised).

    Returns text→image and image→text Recall@k, mean and median rank (ties count against the answer)."""
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
        out[f"{name}_median_rank"] = ranks.float().median().item()
    return out


def accuracy(image_emb: torch.Tensor, class_emb: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Top-k accuracy of nearest-class prediction: image_emb [N, E], class_emb [C, E], labels [N]."""
    top = (image_emb.float() @ class_emb.float().T).topk(min(k, class_emb.shape[0]), dim=1).indices
    return (top == labels.unsqueeze(1)).any(dim=1).float().mean().item()


def vqa_score(answer: str, annotators: list[str]) -> float:
    """VQA's accuracy of one predicted answer: ``min(#annotators who gave it / 3, 1)``. With fewer
    than 3 annotators (the world gives one answer per question) the 3 becomes their number, so a
    single reference answer is plain exact match. Answers are compared after :func:`normalize_answer`."""
    if not annotators:
        raise ValueError("a question needs at least one reference answer")
    wanted = normalize_answer(answer)
    matches = sum(normalize_answer(a) == wanted for a in annotators)
    return min(matches / min(3, len(annotators)), 1.0)


def vqa_accuracy(predicted: list[str], annotators: list[list[str]]) -> float:
    """Mean :func:`vqa_score` over questions; an answer outside the vocabulary simply scores 0."""
    if len(predicted) != len(annotators):
        raise ValueError(f"{len(predicted)} predictions for {len(annotators)} questions")
    return sum(vqa_score(p, a) for p, a in zip(predicted, annotators)) / max(len(predicted), 1)


def normalize_answer(answer: str) -> str:
    """Lower case, no surrounding space or final full stop, articles dropped, number words as digits —
    the parts of the official VQA normalisation that change which answers match."""
    words = answer.strip().lower().rstrip(".").replace(",", "").split()
    numbers = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
               "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
    return " ".join(numbers.get(w, w) for w in words if w not in ("a", "an", "the"))


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of scores [N] for binary labels [N] (1 = positive): the probability
    that a random positive outscores a random negative, ties counting half (Mann–Whitney U)."""
    scores, labels = scores.double().flatten(), labels.flatten().bool()
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"AUROC needs both classes; got {pos} positive and {neg} negative")
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    _, inverse, counts = scores.unique(return_inverse=True, return_counts=True)
    rank_sums = torch.zeros(len(counts), dtype=scores.dtype).index_add_(0, inverse, ranks)
    ranks = (rank_sums / counts)[inverse]  # tied scores share their mean rank
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of boxes a [N, 4] and b [M, 4] (x0, y0, x1, y1) → [N, M]; 0 for empty boxes."""
    lo = torch.maximum(a[:, None, :2], b[None, :, :2])
    hi = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (hi - lo).clamp(min=0).prod(dim=-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))
