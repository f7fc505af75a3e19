"""Document metrics: entity and link F1 (FUNSD), ANLS (DocVQA), accuracy with a confusion matrix."""

from __future__ import annotations

from pathlib import Path


def f1(predicted: set, gold: set) -> dict:
    """Precision, recall and F1 of two sets of hashable items (exact matches)."""
    hit = len(predicted & gold)
    p = hit / len(predicted) if predicted else 0.0
    r = hit / len(gold) if gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def entity_f1(predicted: list[list[tuple]], gold: list[list[tuple]]) -> dict:
    """Micro F1 over pages of entities, each ``(label, (word indices…))``: an entity counts when its
    label and its exact words match."""
    pred = {(page, e) for page, es in enumerate(predicted) for e in es}
    true = {(page, e) for page, es in enumerate(gold) for e in es}
    return f1(pred, true)


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def anls(predicted: str, answers: list[str], threshold: float = 0.5) -> float:
    """Average Normalised Levenshtein Similarity of one answer (DocVQA): the best over the gold
    answers of 1 − distance / longer length, case-insensitive and trimmed; 0 below ``threshold``."""
    p = " ".join(predicted.lower().split())
    best = 0.0
    for a in answers:
        a = " ".join(a.lower().split())
        if not p and not a:
            return 1.0
        sim = 1.0 - levenshtein(p, a) / max(len(p), len(a))
        best = max(best, sim if sim >= threshold else 0.0)
    return best


def confusion_matrix(predicted: list[int], gold: list[int], n: int) -> list[list[int]]:
    """``m[true][predicted]`` counts."""
    m = [[0] * n for _ in range(n)]
    for p, g in zip(predicted, gold):
        m[g][p] += 1
    return m


def plot_confusion(matrix: list[list[int]], classes: list[str], path: str | Path, title: str = "") -> Path:
    """The confusion matrix as a PNG (rows: true class, columns: predicted), counts written in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(classes), 1.0 + 0.8 * len(classes)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
