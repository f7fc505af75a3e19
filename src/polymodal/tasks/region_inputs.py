"""A detector's regions as ViLBERT's datasets hand them to the model (vilbert-multi-task
``_image_features_reader.py``): a global region first — the mean of the region features, located at the
whole picture (0, 0, 1, 1, area 1) — then each box as (x0/w, y0/h, x1/w, y1/h, its share of the area)."""

from __future__ import annotations

import torch


def vilbert_regions(features: torch.Tensor, boxes: torch.Tensor, width: int, height: int,
                    max_regions: int = 101) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """features [K, D], boxes [K, 4] (pixels) → features [1, K + 1, D], locations [1, K + 1, 5], mask [1, K + 1]
    (the first ``max_regions`` − 1 boxes are kept, as the reference's ``max_region_num`` does)."""
    features, boxes = features[:max_regions - 1].float(), boxes[:max_regions - 1].float()
    if len(features) == 0:
        raise ValueError("no regions: the detector found no box")
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    area = (boxes[:, 3] - boxes[:, 1]) * (boxes[:, 2] - boxes[:, 0]) / float(width * height)
    locations = torch.cat([torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0]]), torch.cat([boxes / scale, area[:, None]], 1)])
    features = torch.cat([features.mean(0, keepdim=True), features])
    return features[None], locations[None], torch.ones(1, len(features), dtype=torch.long)
