"""Retrieval-augmented batches (VideoCLIP §3.3): a batch drawn from videos the current model finds
alike holds harder negatives than a random one.

Every ``recluster`` steps the training videos are embedded with the model being trained (the video
tower's pooled output, averaged over the video's clips) and clustered with FAISS spherical k-means.
A batch starts from a random cluster and takes its segments from that cluster and the clusters whose
centroids are nearest to it, until it is full. Before the first clustering the batches are random,
as the video tower has not learnt anything to cluster by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Clusters:
    """Video clusters: ``assign`` [N_videos] cluster ids, ``order`` [K, K] each cluster's clusters by
    centroid similarity (itself first), ``step`` the training step they were computed at."""
    assign: np.ndarray
    order: np.ndarray
    step: int

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {"assign": torch.from_numpy(self.assign), "order": torch.from_numpy(self.order),
                "step": torch.tensor([self.step])}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> "Clusters":
        return cls(t["assign"].numpy(), t["order"].numpy(), int(t["step"][0]))


def cluster_videos(embeddings: np.ndarray, k: int, seed: int, step: int, iterations: int = 20,
                   restarts: int = 3) -> Clusters:
    """FAISS spherical k-means of video embeddings [N, D] into ``k`` clusters (at most N), the best of
    ``restarts`` runs (one can settle with two centroids in one group)."""
    import faiss

    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    faiss.normalize_L2(x)
    k = max(1, min(k, len(x)))
    kmeans = faiss.Kmeans(x.shape[1], k, niter=iterations, nredo=restarts, seed=seed, spherical=True, verbose=False,
                          min_points_per_centroid=1)
    kmeans.train(x)
    _, assign = kmeans.index.search(x, 1)
    centroids = kmeans.centroids
    order = np.argsort(-(centroids @ centroids.T), axis=1, kind="stable")
    order = np.concatenate([np.arange(k)[:, None], order[order != np.arange(k)[:, None]].reshape(k, k - 1)], axis=1)
    return Clusters(assign[:, 0].astype(np.int64), order.astype(np.int64), step)


def neighbour_batch(clusters: Clusters, rows_of_video: list[np.ndarray], batch_size: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``batch_size`` training rows: the segments of a random cluster's videos, then of its nearest
    clusters', until there are enough (the last cluster taken is sampled from)."""
    members = [np.flatnonzero(clusters.assign == c) for c in range(len(clusters.order))]
    start = int(rng.integers(len(clusters.order)))
    picked: list[np.ndarray] = []
    have = 0
    for c in clusters.order[start]:
        rows = np.concatenate([rows_of_video[v] for v in members[c]] or [np.zeros(0, np.int64)])
        rows = rng.permutation(rows)[:batch_size - have]
        picked.append(rows)
        have += len(rows)
        if have == batch_size:
            break
    out = np.concatenate(picked)
    if len(out) < batch_size:
        raise ValueError(f"a batch of {batch_size} needs that many training segments; there are {len(out)}")
    return rng.permutation(out)
