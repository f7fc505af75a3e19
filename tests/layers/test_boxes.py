"""NMS and box coding against their definitions, written out as plain loops."""

import math

import pytest
import torch

from polymodal.layers.boxes import batched_nms, box_iou, clip_boxes, decode_boxes, nms, nonempty


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else float("nan")


def _greedy(boxes, scores, thr, groups=None):
    """Visit by score (ties: lower index first); keep a box unless a kept box of its group overlaps it by > thr."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        if all(_iou(boxes[j], boxes[i]) <= thr or math.isnan(_iou(boxes[j], boxes[i]))
               or (groups is not None and groups[i] != groups[j]) for j in kept):
            kept.append(i)
    return kept


def _random_case(g, n):
    xy = torch.randint(0, 40, (n, 2), generator=g).float()
    wh = torch.randint(0, 20, (n, 2), generator=g).float()  # zero-width boxes too
    scores = torch.randint(0, 6, (n,), generator=g).float()  # many ties
    return torch.cat([xy, xy + wh], 1), scores


@pytest.mark.parametrize("seed", range(6))
def test_nms_matches_the_greedy_definition_with_ties_and_empty_boxes(seed):
    g = torch.Generator().manual_seed(seed)
    boxes, scores = _random_case(g, 60)
    for thr in (0.0, 0.3, 0.7):
        assert nms(boxes, scores, thr).tolist() == _greedy(boxes.tolist(), scores.tolist(), thr)


@pytest.mark.parametrize("seed", range(4))
def test_batched_nms_suppresses_only_within_a_group(seed):
    g = torch.Generator().manual_seed(100 + seed)
    boxes, scores = _random_case(g, 60)
    groups = torch.randint(0, 3, (60,), generator=g)
    kept = batched_nms(boxes, scores, groups, 0.4).tolist()
    assert kept == _greedy(boxes.tolist(), scores.tolist(), 0.4, groups.tolist())
    # The same box twice in two groups survives twice; in one group once.
    two = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    assert batched_nms(two, torch.tensor([1.0, 1.0]), torch.tensor([0, 1]), 0.5).tolist() == [0, 1]
    assert batched_nms(two, torch.tensor([1.0, 1.0]), torch.tensor([0, 0]), 0.5).tolist() == [0]


def test_nms_of_nothing_and_bad_shapes():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).tolist() == []
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="one group per box"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, dtype=torch.long), 0.5)


def test_iou_clip_nonempty():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 5, 15, 15], [20, 20, 30, 30]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[25 / 175, 0.0]]))
    clipped = clip_boxes(torch.tensor([[-5.0, -1, 50, 8]]), height=6, width=40)
    assert clipped.tolist() == [[0.0, 0, 40, 6]]
    assert nonempty(torch.tensor([[0.0, 0, 3, 3], [0, 0, 1, 3]]), 1.0).tolist() == [True, False]
    with pytest.raises(ValueError, match="NaN"):
        clip_boxes(torch.tensor([[0.0, float("nan"), 1, 1]]), 5, 5)


def test_decode_boxes_inverts_the_box_coding():
    weights = (10.0, 10.0, 5.0, 5.0)
    src = torch.tensor([[10.0, 20, 50, 100], [0, 0, 8, 4]])
    dst = torch.tensor([[12.0, 18, 60, 90], [1, 1, 5, 9]])
    sw, sh = src[:, 2] - src[:, 0], src[:, 3] - src[:, 1]
    dw, dh = dst[:, 2] - dst[:, 0], dst[:, 3] - dst[:, 1]
    deltas = torch.stack([10 * ((dst[:, 0] + dw / 2) - (src[:, 0] + sw / 2)) / sw,
                          10 * ((dst[:, 1] + dh / 2) - (src[:, 1] + sh / 2)) / sh,
                          5 * torch.log(dw / sw), 5 * torch.log(dh / sh)], 1)
    torch.testing.assert_close(decode_boxes(deltas, src, weights), dst)
    # Per-class deltas [N, 4k] decode each class's box; huge scales are clamped, not overflowing.
    two = decode_boxes(torch.cat([deltas, torch.full_like(deltas, 1e4)], 1), src, weights)
    torch.testing.assert_close(two[:, :4], dst)
    assert torch.isfinite(two).all()
