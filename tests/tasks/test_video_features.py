"""From video files to per-second features: resampling to a fixed rate from each frame's timestamp,
resize + centre crop, the S3D backbone, and `polymodal video features` (resumable, bad files
reported, the rest done)."""

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import polymodal
from polymodal.cli import app
from polymodal.modalities.video import VideoReadError
from polymodal.tasks.video_features import s3d_backbone, video_features, video_seconds


def _video(path, seconds: float, rate: int, width: int = 48, height: int = 32):
    """Frame k is a flat grey of level 10·k (k < 25), at rate ``rate``: its content tells its time."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"qp": "0"}
        for k in range(int(seconds * rate)):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 10 * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_seconds_resample_by_timestamp_and_pad_the_last_one(tmp_path):
    path = _video(tmp_path / "v.mp4", 2.5, rate=4)  # frames at 0, .25, .5, … 2.25 s: levels 0, 10, …, 90
    seconds = list(video_seconds(path, fps=8, size=16))
    assert len(seconds) == 3 and seconds[0].shape == (8, 16, 16, 3)
    levels = np.concatenate([s[:, 8, 8, 0] for s in seconds]).astype(int)
    # instant i/8 s shows frame floor(i / 2) (4 fps), then the last frame fills the third second
    expected = [10 * (i // 2) for i in range(20)] + [90] * 4
    assert np.abs(levels - expected).max() <= 3  # yuv420p rounding


def test_short_side_is_resized_then_centre_cropped(tmp_path):
    path = tmp_path / "wide.mp4"
    with av.open(str(path), "w") as container:  # left half black, right half white, 64×32
        stream = container.add_stream("libx264", rate=2)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.options = {"qp": "0"}
        image = np.zeros((32, 64, 3), np.uint8)
        image[:, 32:] = 255
        for k in range(2):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, 2)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (second,) = video_seconds(path, fps=2, size=16)  # 64×32 → 32×16 → the middle 16×16
    row = second[0, 8, :, 0].astype(int)
    assert row[:6].max() < 30 and row[-6:].min() > 225  # the boundary is in the middle of the crop


def test_bad_videos_are_named(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    with pytest.raises(VideoReadError, match="junk.mp4"):
        list(video_seconds(tmp_path / "junk.mp4", 4, 16))


def test_s3d_features_per_second_are_normalised(tmp_path, fixtures):
    model = polymodal.load(fixtures / "s3d")
    path = _video(tmp_path / "v.mp4", 2.0, rate=8)
    feats = video_features(path, s3d_backbone(model, fps=8, size=32), batch=1)
    assert feats.shape == (2, 512) and feats.dtype == np.float32
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    # the same second through the model directly
    first = next(iter(video_seconds(path, 8, 32)))
    with torch.no_grad():
        direct = model(torch.from_numpy(first[None]).permute(0, 4, 1, 2, 3).float() / 255)["video_embedding"]
    assert np.allclose(feats[0], torch.nn.functional.normalize(direct, dim=-1)[0].numpy(), atol=1e-5)
    half = video_features(path, s3d_backbone(polymodal.load(fixtures / "s3d"), fps=8, size=32, bf16=True))
    # bf16 weights are an approximation: on the fixture's deliberately wide random weights the per-second
    # embeddings keep cosine ≈ 0.89–0.94 with fp32 (README: use fp32 where exact features matter)
    assert half.dtype == np.float32 and (half * feats).sum(1).min() > 0.85


def test_the_command_writes_resumes_and_reports_bad_files(tmp_path, fixtures):
    a, b = _video(tmp_path / "a.mp4", 1.5, rate=8), _video(tmp_path / "b.webm.mp4", 1.0, rate=8)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    args = ["video", "features", str(a), str(bad), str(b), "--backbone", "s3d", "--weights", str(fixtures / "s3d"),
            "--fps", "8", "--size", "32", "--out", str(tmp_path / "feats")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    said = "".join(result.output.split())  # rich wraps long paths anywhere
    assert "skipped" in said and "bad.mp4" in said and "2written,0alreadythere,1failed" in said
    assert np.load(tmp_path / "feats" / "a.npy").shape == (2, 512)
    assert np.load(tmp_path / "feats" / "b.webm.npy").shape == (1, 512)
    again = CliRunner().invoke(app, args)
    assert "0written,2alreadythere,1failed" in "".join(again.output.split())
    missing = CliRunner().invoke(app, ["video", "features", str(a), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "--weightsisrequired" in "".join(missing.output.split())


def test_a_video_past_the_limit_is_refused_even_when_its_metadata_is_silent(tmp_path):
    """A .mp4 says how long it is: refused before decoding. A raw H.264 stream carries no duration, so
    the check falls to the frames' own times while decoding — a long stream cannot run unbounded."""
    path = _video(tmp_path / "six.mp4", 6, rate=4)
    with pytest.raises(VideoReadError, match="longer than the 3 s limit"):
        list(video_seconds(path, 4, 16, max_seconds=3))
    assert len(list(video_seconds(path, 4, 16, max_seconds=10))) == 6
    raw = tmp_path / "six.h264"
    with av.open(str(raw), "w", format="h264") as container:  # an elementary stream: no container, no duration
        stream = container.add_stream("libx264", rate=4)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for k in range(24):
            frame = av.VideoFrame.from_ndarray(np.full((32, 48, 3), 10 * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, 4)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(raw)) as probe:  # the premise: no duration to check up front
        assert not probe.streams.video[0].duration
    seconds = video_seconds(raw, 4, 16, max_seconds=3)
    with pytest.raises(VideoReadError, match="frames run past the 3 s limit"):
        list(seconds)
