"""The bottom-up-attention detector (Anderson et al. 2018): a Faster R-CNN with a ResNet C4 backbone and a
res5 box head, trained on Visual Genome's 1,600 object and 400 attribute classes. Its 2048-d region
features are what the published VisualBERT, ViLBERT and LXMERT checkpoints read.

    image [B, 3, H, W] ─ stem ─ res2 ─ res3 ─ res4 ─────────────── features [B, C4, H/16, W/16]
        RPN: 3×3 conv ─ objectness [B, A, h, w] + anchor deltas [B, 4A, h, w] ─ decode anchors ─ top-k ─ NMS
        box head: RoI max-pool (P×P) ─ res5 (stride 1, dilated 3×3 on VG) ─ mean ─ pooled [R, 8·C2]
            ─ cls_score [R, classes + 1] (background last), bbox_pred [R, 4·classes]
            ─ attributes: [pooled, embedding(argmax class)] ─ fc_attr ─ ReLU ─ attr_score [R, attributes + 1]

Which boxes an image keeps is :mod:`polymodal.models.region_selection`'s job. Inference only: nothing
here trains a detector. Norms are frozen batch norms (the checkpoints' ``BatchNorm2d`` statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.boxes import batched_nms, clip_boxes, decode_boxes, nonempty
from ..layers.roi_pool import roi_pool
from ..registry import register_family, register_preset
from .resnext_fpn import Bottleneck, Stem

ROI_GROUP = 32  # boxes through the res5 head at a time


@dataclass
class FasterRCNNConfig:
    # backbone: a ResNet's stem and res2..res4 (res5 is the box head)
    depths: tuple[int, ...] = (3, 4, 23)  # ResNet-101
    stem_channels: int = 64
    res2_channels: int = 256  # res2's output width, doubled per stage; res5 gives 8× this
    groups: int = 1
    width_per_group: int = 64  # res2's bottleneck width is groups · width_per_group
    stride_in_1x1: bool = True  # MSRA/Caffe ResNets stride in the first 1×1
    caffe_maxpool: bool = True
    # RPN
    anchor_sizes: tuple[float, ...] = (32.0, 64.0, 128.0, 256.0, 512.0)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    anchor_offset: float = 0.0
    rpn_channels: int = 512  # the VG model's hidden width (detectron2's default is res4's width)
    rpn_box_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    rpn_nms: float = 0.7
    rpn_pre_nms: int = 6000
    rpn_post_nms: int = 300
    rpn_min_size: float = 0.0
    # box head
    pool_size: int = 14
    res5_blocks: int = 3
    res5_dilated: bool = True  # VG: res5 keeps stride 1 and dilates its 3×3 convs (RES5HALVE False)
    num_classes: int = 1600
    num_attributes: int = 400  # 0: no attribute head
    box_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    class_agnostic_boxes: bool = False
    # which boxes an image keeps (polymodal.models.region_selection)
    selection: str = "bottom-up"  # "bottom-up": per-class NMS + score threshold; "fixed": the LXMERT demo's
    nms_thresholds: tuple[float, ...] = (0.3,)
    score_threshold: float = 0.2
    min_boxes: int = 10
    max_boxes: int = 100
    # input
    channel_order: str = "BGR"  # what the network reads (Caffe weights: BGR)
    pixel_mean: tuple[float, float, float] = (102.9801, 115.9465, 122.7717)  # in channel_order, 0–255
    pixel_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    min_size: int = 600  # short side after resizing
    max_size: int = 1000  # long side at most
    # names (from the checkpoint folder's vocabulary files; empty: shown as numbers)
    class_names: tuple[str, ...] = ()
    attribute_names: tuple[str, ...] = ()

    def __post_init__(self):
        if self.selection not in ("bottom-up", "fixed"):
            raise ValueError(f"selection must be 'bottom-up' or 'fixed', got {self.selection!r}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if not 1 <= self.min_boxes <= self.max_boxes:
            raise ValueError(f"need 1 ≤ min_boxes ≤ max_boxes, got {self.min_boxes} and {self.max_boxes}")
        for names, n, what in ((self.class_names, self.num_classes, "class"),
                               (self.attribute_names, self.num_attributes, "attribute")):
            if names and len(names) != n:
                raise ValueError(f"{len(names)} {what} names for {n} {what}es" if what == "class"
                                 else f"{len(names)} attribute names for {n} attributes")

    @property
    def feature_dim(self) -> int:
        return self.res2_channels * 8

    @property
    def stride(self) -> int:
        return 4 * 2 ** (len(self.depths) - 1)


class ResNetC4(nn.Module):
    """images [B, 3, H, W] → the last stage's map [B, res2_channels · 2^(stages−1), H/stride, W/stride]."""

    def __init__(self, c: FasterRCNNConfig):
        super().__init__()
        self.stem = Stem(3, c.stem_channels, caffe_maxpool=c.caffe_maxpool)
        cin, cout, width = c.stem_channels, c.res2_channels, c.groups * c.width_per_group
        self.stage_names = [f"res{i + 2}" for i in range(len(c.depths))]
        for i, (name, depth) in enumerate(zip(self.stage_names, c.depths)):
            blocks = [Bottleneck(cin if b == 0 else cout, cout, width, c.groups, 2 if b == 0 and i > 0 else 1,
                                 stride_in_1x1=c.stride_in_1x1) for b in range(depth)]
            self.add_module(name, nn.Sequential(*blocks))
            cin, cout, width = cout, cout * 2, width * 2
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x


def cell_anchors(sizes, ratios) -> torch.Tensor:
    """[len(sizes) · len(ratios), 4] anchors centred on 0, sizes outer, ratios (h / w) inner."""
    out = []
    for size in sizes:
        for ratio in ratios:
            w = math.sqrt(size ** 2.0 / ratio)
            h = ratio * w
            out.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(out)


class RPNHead(nn.Module):
    """features [B, C, h, w] → objectness logits [B, A, h, w], anchor deltas [B, 4A, h, w]."""

    def __init__(self, cin: int, c: FasterRCNNConfig):
        super().__init__()
        a = len(c.anchor_sizes) * len(c.anchor_ratios)
        hidden = c.rpn_channels if c.rpn_channels > 0 else cin
        self.conv = nn.Conv2d(cin, hidden, 3, padding=1)
        self.objectness_logits = nn.Conv2d(hidden, a, 1)
        self.anchor_deltas = nn.Conv2d(hidden, 4 * a, 1)
        for layer in (self.conv, self.objectness_logits, self.anchor_deltas):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = F.relu(self.conv(x))
        return self.objectness_logits(t), self.anchor_deltas(t)


class BoxPredictor(nn.Module):
    """pooled [R, D] → class logits [R, classes + 1], box deltas [R, 4·classes (or 4)], attribute logits
    [R, attributes + 1] (or None). The attribute branch reads the argmax class (background included)."""

    def __init__(self, d: int, c: FasterRCNNConfig):
        super().__init__()
        self.cls_score = nn.Linear(d, c.num_classes + 1)
        self.bbox_pred = nn.Linear(d, 4 * (1 if c.class_agnostic_boxes else c.num_classes))
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)
        if c.num_attributes:
            self.cls_embedding = nn.Embedding(c.num_classes + 1, d // 8)
            self.fc_attr = nn.Linear(d + d // 8, d // 4)
            self.attr_score = nn.Linear(d // 4, c.num_attributes + 1)

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        scores = self.cls_score(pooled)
        deltas = self.bbox_pred(pooled)
        if not hasattr(self, "attr_score"):
            return scores, deltas, None
        embedded = self.cls_embedding(scores.argmax(-1))
        return scores, deltas, self.attr_score(F.relu(self.fc_attr(torch.cat([pooled, embedded], -1))))


class BoxHead(nn.Module):
    """res4 map [B, C4, h, w] + boxes [R, 4] on images [R] → pooled features [R, 8·C2] and predictions."""

    def __init__(self, cin: int, c: FasterRCNNConfig):
        super().__init__()
        cout = c.res2_channels * 8
        width = c.groups * c.width_per_group * 8
        blocks = []
        for b in range(c.res5_blocks):
            stride = 1 if (b > 0 or c.res5_dilated) else 2
            blocks.append(Bottleneck(cin if b == 0 else cout, cout, width, c.groups, stride,
                                     stride_in_1x1=c.stride_in_1x1, dilation=2 if c.res5_dilated else 1))
        self.res5 = nn.Sequential(*blocks)
        self.predictor = BoxPredictor(cout, c)
        self.pool_size = c.pool_size

    def forward(self, features: torch.Tensor, boxes: torch.Tensor, batch_index: torch.Tensor, stride: int):
        # res5 on P×P maps of every box is most of the detector's work (≈ 6 GFLOPs a box for ResNet-101):
        # boxes go through in groups, channels-last, so that each group's activations stay in cache.
        size = (self.pool_size, self.pool_size)
        pooled = []
        for start in range(0, len(boxes), ROI_GROUP):
            x = roi_pool(features, boxes[start:start + ROI_GROUP], batch_index[start:start + ROI_GROUP], size,
                         1.0 / stride)
            pooled.append(self.res5(x.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3)))
        pooled = torch.cat(pooled) if pooled else features.new_zeros(0, self.predictor.cls_score.in_features)
        return pooled, *self.predictor(pooled)


class FasterRCNN(nn.Module):
    def __init__(self, c: FasterRCNNConfig):
        super().__init__()
        self.config = c
        self.backbone = ResNetC4(c)
        self.rpn = RPNHead(self.backbone.out_channels, c)
        self.head = BoxHead(self.backbone.out_channels, c)
        self.register_buffer("cell_anchors", cell_anchors(c.anchor_sizes, c.anchor_ratios), persistent=False)
        # Convolutions run channels-last (oneDNN's native layout: no reorder per call, ~1.2× on CPUs).
        self.to(memory_format=torch.channels_last)

    def anchors(self, h: int, w: int) -> torch.Tensor:
        """Anchors of an h × w map [h·w·A, 4] in input pixels, ordered (y, x, anchor)."""
        s, off = self.config.stride, self.config.anchor_offset
        ys = torch.arange(off * s, h * s, step=s, dtype=torch.float32, device=self.cell_anchors.device)
        xs = torch.arange(off * s, w * s, step=s, dtype=torch.float32, device=self.cell_anchors.device)
        y, x = torch.meshgrid(ys, xs, indexing="ij")
        shifts = torch.stack([x, y, x, y], dim=-1).reshape(-1, 1, 4)
        return (shifts + self.cell_anchors.view(1, -1, 4)).reshape(-1, 4)

    def propose(self, objectness: torch.Tensor, deltas: torch.Tensor, sizes: torch.Tensor) -> list[torch.Tensor]:
        """RPN maps (see :class:`RPNHead`), sizes [B, 2] (h, w of each unpadded image) → per image its
        proposals [≤ rpn_post_nms, 4], by decreasing objectness."""
        c = self.config
        b, a, h, w = objectness.shape
        logits = objectness.permute(0, 2, 3, 1).reshape(b, -1)
        boxes = decode_boxes(deltas.view(b, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(-1, 4),
                             self.anchors(h, w).repeat(b, 1), c.rpn_box_weights).view(b, -1, 4)
        out = []
        for i in range(b):
            top = torch.sort(logits[i], descending=True, stable=True).indices[:c.rpn_pre_nms]
            boxes_i = clip_boxes(boxes[i, top], int(sizes[i, 0]), int(sizes[i, 1]))
            scores_i = logits[i, top]
            keep = nonempty(boxes_i, c.rpn_min_size)
            boxes_i, scores_i = boxes_i[keep], scores_i[keep]
            kept = batched_nms(boxes_i, scores_i, torch.zeros_like(scores_i, dtype=torch.long), c.rpn_nms)
            out.append(boxes_i[kept[:c.rpn_post_nms]])
        return out

    def run(self, images: torch.Tensor, sizes: torch.Tensor) -> dict:
        """images [B, 3, H, W] (normalised, padded), sizes [B, 2] (h, w before padding) → every stage's
        output: ``features`` (res4), ``objectness``, ``anchor_deltas``, ``proposals`` (list of [R_i, 4]),
        ``pooled`` [ΣR, D], ``class_logits``, ``box_deltas``, ``attribute_logits``."""
        features = self.backbone(images.contiguous(memory_format=torch.channels_last))
        objectness, anchor_deltas = self.rpn(features)
        with torch.no_grad():
            proposals = self.propose(objectness, anchor_deltas, sizes)
        batch_index = torch.cat([torch.full((len(p),), i, dtype=torch.long) for i, p in enumerate(proposals)])
        pooled, class_logits, box_deltas, attr_logits = self.head(features, torch.cat(proposals), batch_index,
                                                                  self.config.stride)
        return {"features": features, "objectness": objectness, "anchor_deltas": anchor_deltas,
                "proposals": proposals, "pooled": pooled, "class_logits": class_logits, "box_deltas": box_deltas,
                "attribute_logits": attr_logits}

    def forward(self, images: torch.Tensor, sizes: torch.Tensor, scales: torch.Tensor | None = None) -> dict:
        """images [B, 3, H, W], sizes [B, 2], scales [B, 2] (original / resized (y, x); default 1) → each
        image's kept regions, padded to the most any image kept: ``boxes`` [B, K, 4] in original pixels,
        ``scores``, ``attribute_scores`` [B, K], ``classes``, ``attributes`` [B, K] (long), ``features``
        [B, K, D], ``num_boxes`` [B]; plus the RPN maps ``objectness`` and ``anchor_deltas``."""
        from .region_selection import select_regions

        out = self.run(images, sizes)
        regions = select_regions(self.config, out, sizes, scales)
        k = max(len(r.boxes) for r in regions)

        def pad(name):
            rows = [getattr(r, name) for r in regions]
            return torch.stack([F.pad(t, (0, 0) * (t.dim() - 1) + (0, k - len(t))) for t in rows])

        padded = {name: pad(name) for name in ("boxes", "scores", "classes", "attributes", "attribute_scores",
                                               "features")}
        return {**padded, "num_boxes": torch.tensor([len(r.boxes) for r in regions]),
                "objectness": out["objectness"], "anchor_deltas": out["anchor_deltas"]}


def _example_inputs(c: FasterRCNNConfig) -> dict:
    side = 4 * c.stride
    return {"images": torch.randn(2, 3, side, side + c.stride), "sizes": torch.tensor([[side, side + c.stride],
                                                                                       [side - 8, side]])}


register_family("frcnn", FasterRCNNConfig, FasterRCNN, example_inputs=_example_inputs)


@register_preset("frcnn-vg-r101-c4")
def _frcnn_vg() -> FasterRCNNConfig:
    """The bottom-up-attention Visual Genome detector (ResNet-101 C4, 1,600 objects, 400 attributes),
    selecting 10–100 boxes per image as its feature extraction did."""
    return FasterRCNNConfig()


@register_preset("frcnn-vg-tiny")
def _frcnn_tiny() -> FasterRCNNConfig:
    """The detector of tests/fixtures/frcnn_vg: a narrow ResNet-50 C4, 12 classes, 7 attributes."""
    return FasterRCNNConfig(depths=(3, 4, 6), stem_channels=8, res2_channels=16, width_per_group=4,
                            anchor_sizes=(16.0, 32.0, 64.0), rpn_channels=24, rpn_pre_nms=120, rpn_post_nms=40,
                            rpn_min_size=2.0, pool_size=6, num_classes=12, num_attributes=7, selection="fixed",
                            nms_thresholds=(0.05, 0.2, 0.5), min_boxes=20, max_boxes=24,
                            pixel_std=(57.0, 57.0, 58.0), min_size=96, max_size=128)
