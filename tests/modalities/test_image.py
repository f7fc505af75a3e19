"""Image preprocessing: every Pillow mode becomes the right RGB; resize/crop/normalise match HF's
PIL CLIP processor."""

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.modalities.image import CLIP_MEAN, CLIP_STD, ImageReadError, ImageTransform, load_image, to_rgb

COLOUR = (200, 100, 50)


def _pixel(img):
    return to_rgb(img).getpixel((0, 0))


def test_modes_become_correct_rgb():
    rgb = Image.new("RGB", (4, 4), COLOUR)
    grey = rgb.convert("L").getpixel((0, 0))
    assert _pixel(rgb) == COLOUR
    assert _pixel(rgb.convert("L")) == (grey,) * 3
    assert _pixel(rgb.convert("1")) == rgb.convert("1").convert("RGB").getpixel((0, 0))
    assert _pixel(rgb.convert("P")) == rgb.convert("P").convert("RGB").getpixel((0, 0))
    cmyk = _pixel(rgb.convert("CMYK"))
    assert max(abs(a - b) for a, b in zip(cmyk, COLOUR)) <= 1
    # Alpha is composited over white, not dropped.
    opaque = Image.new("RGBA", (4, 4), COLOUR + (255,))
    clear = Image.new("RGBA", (4, 4), COLOUR + (0,))
    half = Image.new("RGBA", (4, 4), (0, 0, 0, 128))
    assert _pixel(opaque) == COLOUR and _pixel(clear) == (255, 255, 255)
    assert all(abs(c - 127) <= 1 for c in _pixel(half))
    assert _pixel(Image.new("LA", (4, 4), (60, 0))) == (255, 255, 255)
    assert _pixel(Image.new("LA", (4, 4), (60, 255))) == (60, 60, 60)
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    p.info["transparency"] = 1
    assert _pixel(p) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_16_bit_greyscale_is_rescaled_not_clipped(mode):
    arr = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16)
    if mode == "I":
        img = Image.fromarray(arr.astype(np.int32))
    else:
        img = Image.frombytes(mode, (4, 1), arr.astype("<u2" if mode == "I;16" else ">u2").tobytes())
    assert img.mode == mode
    out = np.asarray(to_rgb(img))[0, :, 0]
    assert out.tolist() == [0, 64, 128, 255]


def test_transform_matches_hf_pil_clip_processor():
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    rng = np.random.default_rng(0)
    reference = CLIPImageProcessorPil(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
    ours = ImageTransform(64)
    # Sizes whose crop margin is even: HF floors an odd margin's half, torchvision (OpenAI's
    # preprocessing, which we follow) rounds it; see the next test.
    for h, w in [(60, 90), (120, 64), (64, 64), (31, 200)]:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        want = reference(img, return_tensors="pt")["pixel_values"][0]
        got = ours(img)
        assert got.shape == (3, 64, 64)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_odd_crop_margin_rounds_like_torchvision():
    img = Image.fromarray(np.tile(np.arange(115, dtype=np.uint8)[None, :, None], (64, 1, 3)))
    x = ImageTransform(64, mean=(0, 0, 0), std=(1, 1, 1))(img)
    assert round(x[0, 0, 0].item() * 255) == int(round((115 - 64) / 2.0))  # column 26


def test_transform_normalises_with_the_given_statistics():
    x = ImageTransform(8)(Image.new("RGB", (8, 8), COLOUR))
    expected = (torch.tensor(COLOUR) / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(x[:, 3, 3], expected)


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageReadError, match="broken.png"):
        load_image(bad)
