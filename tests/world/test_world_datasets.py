"""Task datasets: pure functions of the index, so loader workers and DDP ranks agree."""

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from polymodal.world import WorldDataset
from polymodal.world.tasks import (CaptionDataset, ConsistencyDataset, DocumentDataset, RefExpDataset,
                                        VCRDataset, VideoDataset, VQADataset)


def test_loader_workers_and_ranks_see_the_same_samples_without_duplicates():
    ds = CaptionDataset("train", 24)
    direct = [ds[i]["caption"] for i in range(24)]
    loader = DataLoader(ds, batch_size=5, num_workers=2, collate_fn=lambda b: [x["caption"] for x in b])
    assert [c for batch in loader for c in batch] == direct
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
        seen += list(sampler)
    assert sorted(seen) == list(range(24))


def test_every_task_dataset_yields_its_fields():
    shapes = {
        CaptionDataset: ("image", (3, 64, 64)), VQADataset: ("image", (3, 64, 64)),
        RefExpDataset: ("box", (4,)), ConsistencyDataset: ("image", (3, 64, 64)),
        VCRDataset: ("image", (3, 64, 64)), VideoDataset: ("video", (8, 3, 64, 64)),
        DocumentDataset: ("page", (3, 400, 320)),
    }
    for cls, (key, shape) in shapes.items():
        ds = cls("val", 6)
        items = [ds[i] for i in range(6)]
        assert all(tuple(it[key].shape) == shape for it in items), cls.__name__
    vcr_items = [VCRDataset("train", 30)[i] for i in range(30)]
    assert all(len(it["answers"]) == 4 and 0 <= it["answer"] < 4 for it in vcr_items)
    questions = [q for i in range(30) for q in VideoDataset("train", 30)[i]["questions"]]
    assert questions and all(q["choices"][q["answer"]] in ("left", "right", "up", "down") for q in questions)


def test_detector_noise_jitters_drops_and_invents_boxes():
    ds = WorldDataset("train", 300, modalities=("regions",), detector_noise=True)
    kept = total = false = 0
    for i in range(300):
        it = ds[i]
        src = it["detection_source"].numpy()
        total += len(it["boxes"])
        kept += (src >= 0).sum()
        false += (src < 0).sum()
        for det, s in zip(it["detections"].numpy(), src, strict=True):
            if s >= 0:
                true = it["boxes"][s].numpy()
                size = np.array([true[2] - true[0], true[3] - true[1]] * 2)
                assert (np.abs(det - true) <= 0.05 * size + 1e-4).all()
    assert 0.85 < kept / total < 0.95 and 15 < false < 50
    assert torch.equal(ds[7]["detections"], ds[7]["detections"])
