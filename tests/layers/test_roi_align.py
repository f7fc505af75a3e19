"""RoI-align against direct computations: box-aligned bins equal average pooling of the crop, and a
one-sample bin equals hand-written bilinear interpolation."""

import pytest
import torch
import torch.nn.functional as F

from polymodal.layers.roi_align import roi_align


def test_cell_aligned_boxes_equal_average_pooling_of_the_crop():
    torch.manual_seed(0)
    fmap = torch.randn(2, 3, 8, 12)
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [8.0, 4.0, 12.0, 8.0], [2.0, 2.0, 6.0, 6.0]])  # 2 × 2-cell bins
    index = torch.tensor([0, 1, 1])
    out = roi_align(fmap, boxes, index, (2, 2), sampling_ratio=2)
    for k, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
        crop = fmap[index[k], :, y0:y1, x0:x1]
        torch.testing.assert_close(out[k], F.adaptive_avg_pool2d(crop, (2, 2)), rtol=1e-5, atol=1e-6)


def test_spatial_scale_maps_input_pixels_to_cells():
    fmap = torch.randn(1, 4, 4, 4)
    a = roi_align(fmap, torch.tensor([[0.0, 0.0, 32.0, 32.0]]), torch.tensor([0]), (2, 2), spatial_scale=1 / 16)
    b = roi_align(fmap, torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([0]), (2, 2))
    torch.testing.assert_close(a, b)


def _bilinear(fmap, x, y):
    """fmap [C, H, W] at continuous (x, y) in cell-centre coordinates."""
    x_lo, y_lo = int(torch.floor(torch.tensor(x))), int(torch.floor(torch.tensor(y)))
    dx, dy = x - x_lo, y - y_lo
    return ((1 - dx) * (1 - dy) * fmap[:, y_lo, x_lo] + dx * (1 - dy) * fmap[:, y_lo, x_lo + 1]
            + (1 - dx) * dy * fmap[:, y_lo + 1, x_lo] + dx * dy * fmap[:, y_lo + 1, x_lo + 1])


def test_one_sample_per_bin_is_bilinear_interpolation_at_its_centre():
    torch.manual_seed(1)
    fmap = torch.randn(1, 2, 6, 6)
    box = torch.tensor([[1.3, 0.7, 4.1, 3.9]])
    out = roi_align(fmap, box, torch.tensor([0]), (1, 1), sampling_ratio=1)
    cx, cy = (1.3 + 4.1) / 2 - 0.5, (0.7 + 3.9) / 2 - 0.5  # the bin centre, aligned coordinates
    torch.testing.assert_close(out[0, :, 0, 0], _bilinear(fmap[0], cx, cy), rtol=1e-5, atol=1e-6)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"boxes \[K, 4\]"):
        roi_align(torch.randn(1, 2, 4, 4), torch.zeros(3, 5), torch.zeros(3, dtype=torch.long), (2, 2))
    assert roi_align(torch.randn(1, 2, 4, 4), torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), (2, 2)).shape == (0, 2, 2, 2)
