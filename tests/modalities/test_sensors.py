"""Depth/thermal maps, IMU and video: readers, stems and their errors."""

import av
import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.layers import VideoPatchEmbed
from polymodal.modalities.imu import IMUReadError, IMUStem, load_imu
from polymodal.modalities.maps import MapReadError, depth_to_disparity, load_map, resize_map
from polymodal.modalities.video import VideoReadError, clip_frame_indices, load_video


def test_maps_from_16bit_png_and_npy(tmp_path):
    arr = (np.arange(12 * 10).reshape(12, 10) * 500).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    np.save(tmp_path / "d.npy", arr.astype(np.float32)[None])
    png, npy = load_map(tmp_path / "d.png"), load_map(tmp_path / "d.npy")
    assert png.shape == (12, 10) and png.max() == arr.max()  # 16-bit values kept, not clipped to 255
    assert torch.equal(png, npy)
    assert resize_map(png, 8).shape == (1, 8, 8)
    assert depth_to_disparity(torch.tensor([2.0, 0.0])).tolist() == [0.5, 10.0]


def test_bad_maps_say_what_was_expected(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(MapReadError, match="rgb.png: a map must be single-channel.*mode RGB"):
        load_map(tmp_path / "rgb.png")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    with pytest.raises(MapReadError, match=r"cube.npy: expected a single-channel map \[H, W\], got shape \(2, 3, 4\)"):
        load_map(tmp_path / "cube.npy")
    np.save(tmp_path / "nan.npy", np.full((3, 3), np.nan))
    with pytest.raises(MapReadError, match="NaN"):
        load_map(tmp_path / "nan.npy")
    (tmp_path / "x.png").write_bytes(b"junk")
    with pytest.raises(MapReadError, match="x.png: not a readable map"):
        load_map(tmp_path / "x.png")


def test_imu_csv_npy_and_errors(tmp_path):
    data = np.random.default_rng(0).normal(size=(6, 40)).astype(np.float32)
    np.save(tmp_path / "a.npy", data.T)
    rows = "\n".join(",".join(f"{v:.6f}" for v in row) for row in data.T)
    (tmp_path / "a.csv").write_text("ax,ay,az,gx,gy,gz\n" + rows)
    assert torch.allclose(load_imu(tmp_path / "a.npy"), torch.from_numpy(data))
    assert torch.allclose(load_imu(tmp_path / "a.csv", length=32), torch.from_numpy(data[:, :32]), atol=1e-6)
    with pytest.raises(IMUReadError, match="a.npy: 40 IMU samples, the model needs 2000"):
        load_imu(tmp_path / "a.npy", length=2000)
    np.save(tmp_path / "b.npy", np.zeros((3, 100)))
    with pytest.raises(IMUReadError, match=r"expected IMU data \[6, T\] .*got shape \(3, 100\)"):
        load_imu(tmp_path / "b.npy")


def test_imu_stem_token_layout():
    stem = IMUStem(dim=48, patch=8)
    with torch.no_grad():
        stem.proj.weight.copy_(torch.eye(48))
        stem.norm = torch.nn.Identity()
    x = torch.arange(6 * 16, dtype=torch.float32).view(1, 6, 16)
    tokens = stem(x)  # feature index channel·8 + t of window j
    assert tokens.shape == (1, 2, 48)
    assert tokens[0, 1, 8 * 2 + 3].item() == x[0, 2, 8 + 3].item()


def test_video_patch_embed_inflated_from_2d_equals_2d():
    conv = torch.nn.Conv2d(3, 8, 4, 4, bias=False)
    stem = VideoPatchEmbed(4, 2, 3, 8)
    stem.inflate_from(conv.weight)
    image = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(stem(image), conv(image).flatten(2).transpose(1, 2))
    with pytest.raises(ValueError, match=r"clips \[B, 3, 2, H, W\], got \(2, 3, 3, 8, 8\)"):
        stem(torch.randn(2, 3, 3, 8, 8))


def _write_video(path, frames):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())


def test_video_file_to_clips(tmp_path):
    frames = np.zeros((10, 48, 64, 3), np.uint8)
    for i in range(10):
        frames[i, :, :, 0] = 25 * i  # red ramps up over time
    _write_video(tmp_path / "v.mp4", frames)
    clips = load_video(tmp_path / "v.mp4", clips=2, frames_per_clip=2)
    assert clips.shape == (2, 3, 2, 224, 224)
    red = clips[:, 0].mean(dim=(-1, -2))  # [clips, frames]
    assert (red[0, 0] < red[0, 1] < red[1, 0] < red[1, 1]).item()
    assert clip_frame_indices(10, 2, 2).tolist() == [[0, 4], [5, 9]]
    assert clip_frame_indices(1, 2, 2).tolist() == [[0, 0], [0, 0]]
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoReadError, match="bad.mp4: not a decodable video"):
        load_video(tmp_path / "bad.mp4")
