"""RoI max-pooling against the Caffe / torchvision kernel, written out as loops over bins and cells."""

import math

import pytest
import torch

from polymodal.layers.roi_pool import roi_pool


def _c_round(v: float) -> int:
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def _reference(features, boxes, batch_index, size, scale):
    f32 = lambda v: torch.tensor(v, dtype=torch.float32).item()  # noqa: E731 — the kernel's float arithmetic
    _, c, h, w = features.shape
    ph, pw = size
    out = torch.zeros(len(boxes), c, ph, pw)
    for k, box in enumerate(boxes):
        x0, y0, x1, y1 = (_c_round(f32(float(v) * f32(scale))) for v in box)
        bh, bw = f32(max(y1 - y0 + 1, 1) / ph), f32(max(x1 - x0 + 1, 1) / pw)
        for i in range(ph):
            for j in range(pw):
                hs = min(max(math.floor(f32(i * bh)) + y0, 0), h)
                he = min(max(math.ceil(f32((i + 1) * bh)) + y0, 0), h)
                ws = min(max(math.floor(f32(j * bw)) + x0, 0), w)
                we = min(max(math.ceil(f32((j + 1) * bw)) + x0, 0), w)
                if he > hs and we > ws:
                    out[k, :, i, j] = features[batch_index[k], :, hs:he, ws:we].amax(dim=(1, 2))
    return out


@pytest.mark.parametrize("scale", [1 / 16, 0.5, 1.0])
def test_roi_pool_matches_the_kernel_definition(scale):
    g = torch.Generator().manual_seed(int(scale * 16))
    features = torch.randn(2, 3, 11, 14, generator=g)
    xy = torch.rand(24, 2, generator=g) * 300 / (scale * 16) - 20
    wh = torch.rand(24, 2, generator=g) * 200 / (scale * 16)
    boxes = torch.cat([xy, xy + wh], 1)
    boxes[0] = torch.tensor([-40.0, -40, -30, -30])  # wholly outside: zeros
    boxes[1] = torch.tensor([3.0, 3, 3, 3])  # a point: one cell
    batch_index = torch.randint(0, 2, (24,), generator=g)
    out = roi_pool(features, boxes, batch_index, (5, 4), scale)
    assert torch.equal(out, _reference(features, boxes, batch_index, (5, 4), scale))
    assert out[0].abs().sum() == 0


def test_half_cells_round_away_from_zero():
    features = torch.arange(16.0).view(1, 1, 4, 4)
    # x0 = 1.5 cells rounds to 2 (banker's rounding would give 2 too); 2.5 rounds to 3, not 2.
    out = roi_pool(features, torch.tensor([[2.5, 0.5, 3.0, 0.5]]), torch.tensor([0]), (1, 1), 1.0)
    assert out.item() == features[0, 0, 1, 3].item()


def test_no_boxes_and_bad_shapes():
    assert roi_pool(torch.randn(1, 2, 4, 4), torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), (2, 2)).shape == (0, 2, 2, 2)
    with pytest.raises(ValueError, match="boxes"):
        roi_pool(torch.randn(1, 2, 4, 4), torch.zeros(3, 5), torch.zeros(3, dtype=torch.long), (2, 2))
