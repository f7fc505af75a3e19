"""Every preset builds; the full-size ones have the published parameter counts; tiny ones train."""

import pytest
import torch

import polymodal
from polymodal.registry import build, preset

# Published counts: timm's ViTs (with the 1000-class head) and OpenAI's CLIP model card/notebook.
PUBLISHED = {
    "vit-b-16": 86_567_656,
    "vit-b-32": 88_224_232,
    "vit-l-16": 304_326_632,
    "vit-h-14": 632_045_800,
    "clip-vit-b-32": 151_277_313,
    "clip-vit-b-16": 149_620_737,
    "clip-vit-l-14": 427_616_513,
    "clip-vit-l-14-336": 427_944_193,
    "bert-base": 109_482_240,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_full_size_parameter_counts(name):
    with torch.device("meta"):
        model = build(preset(name))
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name]


def test_vit_resamples_positions_for_other_resolutions():
    model = polymodal.create("vit-tiny").eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 48, 64)).shape == (1, 1 + 6 * 8, 64)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r"expected images \[B, 3, H, W\]"):
        model(torch.randn(3, 32, 32))


def test_logit_scale_is_clamped_at_100():
    model = polymodal.create("clip-tiny")
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model.scale().item() == 100.0


def test_text_longer_than_context_is_an_error():
    model = polymodal.create("clip-tiny")
    with pytest.raises(ValueError, match="length 17 > context_length 16"):
        model.encode_text(torch.ones(1, 17, dtype=torch.long))


def test_conv_stem_tokens_and_errors():
    from polymodal.models.vit import ViTConfig, VisionTransformer

    vit = VisionTransformer(ViTConfig(image_size=32, patch_size=8, width=16, layers=1, heads=2, mlp_hidden=32,
                                      stem="conv", stem_channels=(4, 8, 8)))
    assert vit.stem(torch.randn(2, 3, 32, 32)).shape == (2, 16, 16)  # 4×4 tokens, as patch size 8
    assert vit(torch.randn(2, 3, 32, 32)).shape == (2, 16)
    with pytest.raises(ValueError, match="not a multiple of the stem's stride 8"):
        vit(torch.randn(1, 3, 36, 36))
    with pytest.raises(ValueError, match="has stride 4, not the patch size 8"):
        VisionTransformer(ViTConfig(image_size=32, patch_size=8, stem="conv", stem_channels=(4, 8)))
    with pytest.raises(ValueError, match="must be 'patch' or 'conv'"):
        VisionTransformer(ViTConfig(image_size=32, patch_size=8, stem="resnet"))
