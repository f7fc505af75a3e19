"""Batches as a pure function of (seed, step), plain or made of hard-negative runs."""

import pytest
import torch

from polymodal.world.scene import sample_scene
from polymodal.train.data import batch_indices, group_runs
from polymodal.world.pictures import world_groups


def test_hard_negative_batches_are_runs_of_one_group_without_repeats():
    groups = world_groups("train", 600, 0)
    scenes = [sample_scene(0, "train", i) for i in range(600)]
    # Scenes of a group share the place and the set of colours; different groups differ in one.
    key = {int(g): (s.place, frozenset(o.colour for o in s.objects)) for g, s in zip(groups, scenes)}
    assert len(set(key.values())) == len(key)
    per_epoch = int((torch.bincount(groups) // 4).sum()) // 8
    assert per_epoch >= 3
    seen = []
    for step in range(per_epoch):
        idx, epoch = batch_indices(step, 32, 600, 0, groups, 4)
        assert epoch == 0 and idx.shape == (32,)
        runs = groups[idx].view(8, 4)
        assert (runs == runs[:, :1]).all()  # each run of 4 shares its group
        seen += idx.tolist()
    assert len(seen) == len(set(seen))  # no scene twice in an epoch
    # Deterministic, and the next epoch is a different arrangement.
    assert torch.equal(batch_indices(1, 32, 600, 0, groups, 4)[0], batch_indices(1, 32, 600, 0, groups, 4)[0])
    nxt, epoch = batch_indices(per_epoch, 32, 600, 0, groups, 4)
    assert epoch == 1 and not torch.equal(nxt, batch_indices(0, 32, 600, 0, groups, 4)[0])
    with pytest.raises(ValueError, match="not a multiple"):
        batch_indices(0, 30, 600, 0, groups, 4)


def test_group_runs_leave_out_only_remainders():
    groups = torch.tensor([0] * 5 + [1] * 3 + [2] * 8)
    runs = group_runs(groups, 2, torch.Generator().manual_seed(0))
    assert runs.shape == (2 + 1 + 4, 2)
    assert (groups[runs][:, 0] == groups[runs][:, 1]).all()
    assert len(set(runs.flatten().tolist())) == 14
