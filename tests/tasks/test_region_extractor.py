"""The built-in region extractor reads a box's features off an image tower's patch grid."""

import pytest
import torch
from PIL import Image

import polymodal
from polymodal.world import WorldDataset
from polymodal.modalities.image import ImageTransform
from polymodal.tasks.region_extractor import RegionExtractor


def test_a_whole_cell_box_gives_that_patch_token():
    torch.manual_seed(0)
    clip = polymodal.create("clip-tiny").eval()  # 32 px, patch 8: a 4 × 4 grid
    extractor = RegionExtractor(clip.visual, ImageTransform(32), output_size=(2, 2))
    image = Image.fromarray((torch.rand(32, 32, 3) * 255).byte().numpy())
    regions = extractor(image, torch.tensor([[8.0, 16.0, 16.0, 24.0], [0.0, 0.0, 32.0, 32.0]]))
    with torch.no_grad():
        tokens = clip.visual.forward_features(extractor.transform(image)[None])[0, 1:]  # [16, 64]
    # Box (8, 16)–(16, 24) is exactly the patch at row 2, column 1: one sample at its centre.
    one_cell = RegionExtractor(clip.visual, ImageTransform(32), output_size=(1, 1), sampling_ratio=1)
    single = one_cell(image, torch.tensor([[8.0, 16.0, 16.0, 24.0]]))
    torch.testing.assert_close(single.features[0], tokens[2 * 4 + 1], rtol=1e-5, atol=1e-5)
    # The whole image is the mean of its four quadrants' samples: the average of all tokens, up to
    # the bilinear blending at the bin edges.
    assert regions.features.shape == (2, 64) and (regions.image_w, regions.image_h) == (32, 32)
    assert torch.cosine_similarity(regions.features[1], tokens.mean(0), dim=0) > 0.95


def test_boxes_follow_the_resize_and_crop():
    clip = polymodal.create("clip-tiny").eval()
    extractor = RegionExtractor(clip.visual, ImageTransform(32))
    # A 64 × 128 image is resized to 32 × 64 and the middle 32 × 32 kept: x shifts by 16 after halving.
    moved = extractor.crop_boxes(torch.tensor([[32.0, 0.0, 96.0, 64.0]]), 128, 64)
    torch.testing.assert_close(moved, torch.tensor([[0.0, 0.0, 32.0, 32.0]]))
    with pytest.raises(ValueError, match=r"expected boxes \[R ≥ 1, 4\]"):
        extractor(Image.new("RGB", (32, 32)), torch.zeros(0, 4))


def test_world_regions_through_a_conv_stem_tower():
    item = WorldDataset("train", 1, image_size=64, modalities=("image", "regions"))[0]
    clip = polymodal.create("clip-world-tiny").eval()  # conv stem to an 8 × 8 grid
    extractor = RegionExtractor(clip.visual, ImageTransform(64))
    image = Image.fromarray(item["image"].permute(1, 2, 0).numpy())
    regions = extractor(image, item["boxes"])
    assert regions.features.shape == (len(item["labels"]), 192) and torch.isfinite(regions.features).all()
