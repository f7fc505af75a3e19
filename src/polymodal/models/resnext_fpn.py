"""LayoutLMv2's visual backbone in plain torch: a ResNeXt with a feature pyramid (FPN), keyed as
detectron2 keys it, so that the ``visual.backbone.*`` tensors of a real LayoutLMv2 checkpoint load
strictly without detectron2.

    image [B, 3, H, W] (BGR, 0–255) ─ (x − mean) / std ─ stem (7×7/2 conv, 3×3/2 max-pool)
      ─ res2 ─ res3 ─ res4 ─ res5          bottleneck blocks, grouped 3×3 convolutions
           └──── lateral 1×1 convs, top-down nearest ×2 upsampling, sum ──── fpn_output2 (3×3) ─ p2

Only p2 (stride 4) feeds LayoutLMv2; ``fpn_output3..5`` are kept so that a checkpoint loads with
nothing left over, and are frozen because nothing reads them. Norms are detectron2's frozen batch
norm (per-channel affine from stored statistics); checkpoints saved after SyncBN conversion also
carry ``num_batches_tracked`` counters, which the layout converter drops.

The reference configuration is ResNeXt-101 32×8d (blocks 3-4-23-3, 32 groups of width 8, FPN 256
channels; ``resnext-101-32x8d-fpn``); ``resnext-tiny-fpn`` is a small one that trains on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_config


@register_config("resnext-fpn")
@dataclass
class ResNeXtFPNConfig:
    depths: tuple[int, ...] = (3, 4, 23, 3)  # bottleneck blocks in res2..res5
    groups: int = 32
    width_per_group: int = 8  # res2's bottleneck width is groups · width_per_group, doubled per stage
    stem_channels: int = 64
    res2_channels: int = 256  # res2's output width, doubled per stage
    fpn_channels: int = 256
    pixel_mean: tuple[float, ...] = (103.53, 116.28, 123.675)  # BGR, 0–255 (detectron2's defaults)
    pixel_std: tuple[float, ...] = (57.375, 57.12, 58.395)


def resnext_tiny_config() -> ResNeXtFPNConfig:
    """Four stages of one block, 4 groups of width 4, FPN 32 channels: ~0.2 M parameters."""
    return ResNeXtFPNConfig(depths=(1, 1, 1, 1), groups=4, width_per_group=4, stem_channels=16, res2_channels=32,
                            fpn_channels=32)


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine (detectron2's ``FrozenBatchNorm2d``):
    ``(x − running_mean) / sqrt(running_var + eps) · weight + bias``, all four stored as buffers."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels) - eps)

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The norm as ``x · scale + shift`` per channel: scale, shift [C]."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_shift()
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)


class ConvNorm(nn.Conv2d):
    """A bias-free convolution followed by its frozen norm (detectron2's ``Conv2d(norm=...)``: keys
    ``weight`` and ``norm.*``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, dilation: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, padding=dilation * (kernel // 2), groups=groups,
                         dilation=dilation, bias=False)
        self.norm = FrozenBatchNorm2d(cout)
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The frozen norm folded into the convolution (its weight scaled, its shift the bias): one pass
        # over the activations instead of two.
        scale, shift = self.norm.scale_shift()
        return F.conv2d(x, self.weight * scale.view(-1, 1, 1, 1), shift, self.stride, self.padding, self.dilation,
                        self.groups)


class Bottleneck(nn.Module):
    """1×1 → grouped 3×3 → 1×1, plus a projected shortcut when the shape changes. The stride sits in the
    3×3 (Caffe2 / fb.torch), or in the first 1×1 with ``stride_in_1x1`` (the original MSRA ResNets)."""

    def __init__(self, cin: int, cout: int, bottleneck: int, groups: int, stride: int, *, stride_in_1x1: bool = False,
                 dilation: int = 1):
        super().__init__()
        self.shortcut = ConvNorm(cin, cout, 1, stride) if cin != cout or stride != 1 else None
        self.conv1 = ConvNorm(cin, bottleneck, 1, stride if stride_in_1x1 else 1)
        self.conv2 = ConvNorm(bottleneck, bottleneck, 3, 1 if stride_in_1x1 else stride, groups, dilation)
        self.conv3 = ConvNorm(bottleneck, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class Stem(nn.Module):
    """7×7/2 convolution, ReLU, 3×3/2 max-pool; ``caffe_maxpool``: Caffe's pool (no padding, ceil mode)."""

    def __init__(self, cin: int, cout: int, caffe_maxpool: bool = False):
        super().__init__()
        self.conv1 = ConvNorm(cin, cout, 7, stride=2)
        self.caffe_maxpool = caffe_maxpool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        if self.caffe_maxpool:
            return F.max_pool2d(x, kernel_size=3, stride=2, padding=0, ceil_mode=True)
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class ResNeXt(nn.Module):
    """image [B, 3, H, W] → [res2, res3, res4, res5] feature maps (strides 4, 8, 16, 32)."""

    def __init__(self, c: ResNeXtFPNConfig):
        super().__init__()
        self.stem = Stem(3, c.stem_channels)
        cin, cout, width = c.stem_channels, c.res2_channels, c.groups * c.width_per_group
        self.stage_names = [f"res{i + 2}" for i in range(len(c.depths))]
        for i, (name, depth) in enumerate(zip(self.stage_names, c.depths)):
            blocks = [Bottleneck(cin if b == 0 else cout, cout, width, c.groups, 2 if b == 0 and i > 0 else 1)
                      for b in range(depth)]
            self.add_module(name, nn.Sequential(*blocks))
            cin, cout, width = cout, cout * 2, width * 2
        self.out_channels = [c.res2_channels * 2 ** i for i in range(len(c.depths))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            features.append(x)
        return features


class ResNeXtFPN(nn.Module):
    """Normalised images [B, 3, H, W] (H, W multiples of 32) → the FPN's p2 map [B, fpn_channels, H/4, W/4]."""

    def __init__(self, c: ResNeXtFPNConfig):
        super().__init__()
        self.config = c
        self.bottom_up = ResNeXt(c)
        for level, cin in zip(range(2, 2 + len(c.depths)), self.bottom_up.out_channels):
            lateral = nn.Conv2d(cin, c.fpn_channels, 1)
            output = nn.Conv2d(c.fpn_channels, c.fpn_channels, 3, padding=1)
            for conv in (lateral, output):  # detectron2's c2_xavier_fill
                nn.init.kaiming_uniform_(conv.weight, a=1)
                nn.init.zeros_(conv.bias)
            if level > 2:
                output.requires_grad_(False)  # p3..p5 are never read (see the module docstring)
            self.add_module(f"fpn_lateral{level}", lateral)
            self.add_module(f"fpn_output{level}", output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"the ResNeXt-FPN takes images [B, 3, H, W] with H and W multiples of 32, "
                             f"got {tuple(x.shape)}")
        features = self.bottom_up(x)
        top = len(features) + 1
        prev = getattr(self, f"fpn_lateral{top}")(features[-1])
        for level in range(top - 1, 1, -1):
            lateral = getattr(self, f"fpn_lateral{level}")(features[level - 2])
            prev = lateral + F.interpolate(prev, size=lateral.shape[-2:], mode="nearest")
        return self.fpn_output2(prev)


class DocumentBackbone(nn.Module):
    """LayoutLMv2's visual stem before the projection: pixels [B, 3, H, W] (BGR, 0–255, as the
    reference's processor hands them over) → normalised → ResNeXt-FPN p2 → average-pooled to the
    ``pool`` grid → [B, rows · cols, fpn_channels], row-major."""

    def __init__(self, c: ResNeXtFPNConfig, pool: tuple[int, int]):
        super().__init__()
        self.backbone = ResNeXtFPN(c)
        self.register_buffer("pixel_mean", torch.tensor(c.pixel_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(c.pixel_std).view(3, 1, 1), persistent=False)
        self.pool = nn.AdaptiveAvgPool2d(pool)

    def feature_map(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] → p2 [B, fpn_channels, H/4, W/4]."""
        return self.backbone((image - self.pixel_mean) / self.pixel_std)

    def pool_map(self, p2: torch.Tensor) -> torch.Tensor:
        """p2 [B, C, h, w] → [B, rows · cols, C]."""
        return self.pool(p2).flatten(2).transpose(1, 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.pool_map(self.feature_map(image))
