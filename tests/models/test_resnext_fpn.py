"""LayoutLMv2's ResNeXt-FPN: the reference configuration (ResNeXt-101 32×8d, FPN 256, p2) has
detectron2's key names and shapes, and our forward equals a functional recomputation written
here from the state dict alone (F.conv2d, F.batch_norm in eval mode, nearest ×2 upsampling)."""

import torch
import torch.nn.functional as F

from polymodal.models.resnext_fpn import DocumentBackbone, ResNeXtFPN, ResNeXtFPNConfig, resnext_tiny_config


def test_reference_configuration_has_detectron2_keys_and_shapes():
    with torch.device("meta"):
        backbone = ResNeXtFPN(ResNeXtFPNConfig())
    sd = {f"visual.backbone.{k}": tuple(v.shape) for k, v in backbone.state_dict().items()}
    blocks = {s: len({k.split(".")[4] for k in sd if k.startswith(f"visual.backbone.bottom_up.{s}.")})
              for s in ("res2", "res3", "res4", "res5")}
    assert blocks == {"res2": 3, "res3": 4, "res4": 23, "res5": 3}  # ResNeXt-101
    expected = {
        "visual.backbone.bottom_up.stem.conv1.weight": (64, 3, 7, 7),
        "visual.backbone.bottom_up.stem.conv1.norm.running_var": (64,),
        "visual.backbone.bottom_up.res2.0.shortcut.weight": (256, 64, 1, 1),
        "visual.backbone.bottom_up.res2.0.conv1.weight": (256, 64, 1, 1),
        "visual.backbone.bottom_up.res2.0.conv2.weight": (256, 8, 3, 3),  # 32 groups of 8
        "visual.backbone.bottom_up.res3.0.conv2.weight": (512, 16, 3, 3),
        "visual.backbone.bottom_up.res3.0.shortcut.norm.bias": (512,),
        "visual.backbone.bottom_up.res4.22.conv3.norm.running_mean": (1024,),
        "visual.backbone.bottom_up.res4.11.conv3.norm.weight": (1024,),
        "visual.backbone.bottom_up.res5.2.conv3.weight": (2048, 2048, 1, 1),  # bottleneck 32 · 8 · 2³
        "visual.backbone.fpn_lateral5.weight": (256, 2048, 1, 1),
        "visual.backbone.fpn_lateral2.bias": (256,),
        "visual.backbone.fpn_output2.weight": (256, 256, 3, 3),
        "visual.backbone.fpn_output5.weight": (256, 256, 3, 3),
    }
    for key, shape in expected.items():
        assert sd[key] == shape, key
    assert "visual.backbone.bottom_up.res2.1.shortcut.weight" not in sd  # identity shortcut inside a stage
    convs = [k for k in sd if k.endswith(".weight") and len(sd[k]) == 4 and "fpn" not in k]
    assert len(convs) == 1 + 3 * (3 + 4 + 23 + 3) + 4  # stem, three per block, one shortcut per stage
    n = sum(torch.Size(s).numel() for k, s in sd.items() if not k.endswith(("running_mean", "running_var")))
    assert 88e6 < n < 92e6  # ResNeXt-101 32×8d without its classifier (~86.7 M) + FPN (~3.3 M)


def _reference_p2(sd: dict, depths, image: torch.Tensor) -> torch.Tensor:
    """detectron2's ResNeXt-FPN p2, written from the tensors alone."""

    def conv_norm(x, prefix, stride=1, groups=1):
        w = sd[f"{prefix}.weight"]
        x = F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2, groups=groups)
        return F.batch_norm(x, sd[f"{prefix}.norm.running_mean"], sd[f"{prefix}.norm.running_var"],
                            sd[f"{prefix}.norm.weight"], sd[f"{prefix}.norm.bias"], training=False, eps=1e-5)

    x = F.max_pool2d(F.relu(conv_norm(image, "bottom_up.stem.conv1", stride=2)), 3, 2, 1)
    features = []
    for s, depth in enumerate(depths):
        for b in range(depth):
            p = f"bottom_up.res{s + 2}.{b}"
            stride = 2 if b == 0 and s > 0 else 1
            w2 = sd[f"{p}.conv2.weight"]
            out = F.relu(conv_norm(x, f"{p}.conv1"))
            out = F.relu(conv_norm(out, f"{p}.conv2", stride, groups=w2.shape[0] // w2.shape[1]))
            out = conv_norm(out, f"{p}.conv3")
            short = conv_norm(x, f"{p}.shortcut", stride) if f"{p}.shortcut.weight" in sd else x
            x = F.relu(out + short)
        features.append(x)
    prev = F.conv2d(features[-1], sd["fpn_lateral5.weight"], sd["fpn_lateral5.bias"])
    for level in (4, 3, 2):
        lateral = F.conv2d(features[level - 2], sd[f"fpn_lateral{level}.weight"], sd[f"fpn_lateral{level}.bias"])
        prev = lateral + F.interpolate(prev, scale_factor=2.0, mode="nearest")
    return F.conv2d(prev, sd["fpn_output2.weight"], sd["fpn_output2.bias"], padding=1)


def test_forward_equals_a_functional_recomputation():
    torch.manual_seed(0)
    c = resnext_tiny_config()
    visual = DocumentBackbone(c, (4, 4)).eval()
    for name, buf in visual.backbone.named_buffers():  # non-trivial frozen statistics
        if name.endswith("running_var"):
            buf.uniform_(0.5, 2.0)
        elif name.endswith(("running_mean", "bias")):
            buf.normal_(0, 0.1)
        elif name.endswith("weight"):
            buf.uniform_(0.5, 1.5)
    image = torch.rand(2, 3, 96, 64) * 255
    sd = visual.backbone.state_dict()
    normalised = (image - torch.tensor(c.pixel_mean).view(3, 1, 1)) / torch.tensor(c.pixel_std).view(3, 1, 1)
    with torch.no_grad():
        p2 = visual.feature_map(image)
        expected = _reference_p2(sd, c.depths, normalised)
        pooled = visual(image)
    assert p2.shape == (2, 32, 24, 16)
    torch.testing.assert_close(p2, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(pooled, F.avg_pool2d(expected, (6, 4)).flatten(2).transpose(1, 2), rtol=1e-4, atol=1e-4)


def test_unread_pyramid_levels_are_frozen_and_the_rest_trains():
    backbone = ResNeXtFPN(resnext_tiny_config())
    frozen = {n for n, p in backbone.named_parameters() if not p.requires_grad}
    assert frozen == {f"fpn_output{i}.{w}" for i in (3, 4, 5) for w in ("weight", "bias")}
    backbone(torch.rand(1, 3, 64, 64)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.parameters() if p.requires_grad)
