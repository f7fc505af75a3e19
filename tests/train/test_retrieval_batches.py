"""Retrieval-augmented batches: FAISS k-means over video embeddings, batches from a cluster and its
nearest neighbours, saved clusters for exact resume."""

import numpy as np
import pytest

from polymodal.train.retrieval_batches import Clusters, cluster_videos, neighbour_batch


def _groups(n_groups=4, per=10, dim=16, seed=0):
    """Videos in ``n_groups`` well-separated directions; video v belongs to group v // per."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:n_groups] * 5
    x = np.concatenate([c + rng.normal(0, 0.3, (per, dim)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(n_groups), per)


def test_kmeans_recovers_separated_groups_and_orders_neighbours_self_first():
    x, groups = _groups()
    clusters = cluster_videos(x, 4, seed=0, step=7)
    assert clusters.step == 7 and clusters.order[:, 0].tolist() == [0, 1, 2, 3]
    assert sorted(clusters.order[2].tolist()) == [0, 1, 2, 3]
    for g in range(4):  # each group lands in one cluster of its own
        assert len(set(clusters.assign[groups == g].tolist())) == 1
    assert len(set(clusters.assign.tolist())) == 4
    again = Clusters.from_tensors(clusters.to_tensors())
    assert np.array_equal(again.assign, clusters.assign) and np.array_equal(again.order, clusters.order)


def test_a_neighbour_batch_comes_from_one_cluster_when_it_is_big_enough():
    x, groups = _groups()
    clusters = cluster_videos(x, 4, seed=0, step=0)
    rows_of_video = [np.array([2 * v, 2 * v + 1]) for v in range(len(x))]  # two segments per video
    video_of_row = np.repeat(np.arange(len(x)), 2)
    rng = np.random.default_rng(0)
    for _ in range(10):
        rows = neighbour_batch(clusters, rows_of_video, 12, rng)  # a group holds 20 segments
        assert len(rows) == 12 == len(set(rows.tolist()))
        assert len(set(groups[video_of_row[rows]].tolist())) == 1
    rows = neighbour_batch(clusters, rows_of_video, 30, rng)  # 20 from one cluster, 10 from the next
    assert len(set(rows.tolist())) == 30 and len(set(groups[video_of_row[rows]].tolist())) == 2
    with pytest.raises(ValueError, match="needs that many training segments"):
        neighbour_batch(clusters, rows_of_video, 100, rng)


def test_random_batches_mix_the_groups():
    """The control: random batches of the same size span several groups (so the test above says something)."""
    from polymodal.train.data import batch_indices

    _, groups = _groups()
    rows, _ = batch_indices(0, 12, 80, 0)
    assert len(set(groups[(rows // 2).numpy()].tolist())) > 1
