"""Videos whose frames are small in the file but huge once resized (a tall strip), sampled per second."""

from bounded import run_python_bounded


def tall_video(path, w: int = 16, h: int = 60_000, frames: int = 3) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w") as c:
        s = c.add_stream("png", rate=2)
        s.width, s.height, s.pix_fmt = w, h, "rgb24"
        for i in range(frames):
            for packet in s.encode(av.VideoFrame.from_ndarray(np.full((h, w, 3), 40 * i, np.uint8), format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)


def test_tall_frames_are_refused_by_their_resized_size_within_the_bound(tmp_path):
    """16 × 60,000 frames pass the source-frame check (1 M pixels); at 224 px their short side makes
    them 224 × 840,000 (564 MB each): refused by name before any is resized."""
    video = tmp_path / "tall.mov"
    tall_video(video)
    code = ("from polymodal.tasks.video_features import video_seconds\n"
            "from polymodal.modalities.video import VideoReadError\n"
            f"try:\n    list(video_seconds({str(video)!r}, 2, 224))\n"
            "except VideoReadError as e:\n    print(e)\n")
    ran = run_python_bounded(code, limit=3 << 30)
    assert ran.returncode == 0, ran.output
    assert "tall.mov: frames of 16×60000 pixels would be 224×840000 at 224 px: too thin" in ran.stdout


def test_video_localize_bounds_its_features_and_its_plot(tmp_path, tower, minilm_dir):
    import numpy as np

    import polymodal
    from bounded import one_line_error, run_bounded
    from polymodal.train.config import load_config
    from polymodal.train.trainer import run

    cfg = load_config(None, ["objective.kind=videoclip", "model.preset=videoclip-tiny", f"data.frame_tower={tower}",
                             f"data.tokenizer={minilm_dir}", "data.context_length=32", "data.train_n=8", "data.val_n=3",
                             "train.batch_size=8", "train.steps=1", "train.threads=1", f"train.out={tmp_path / 'run'}"])
    run(cfg)
    model = tmp_path / "run" / "model"
    dim = polymodal.load(model).config.input_dim
    (tmp_path / "steps.txt").write_text("the red circle moves left\n")
    import json

    from polymodal.tasks.video_search import frame_tower_record

    tower_dir, fps = frame_tower_record(model)
    (tmp_path / "backbone.json").write_text(json.dumps({"backbone": "clip", "weights": str(tower_dir), "fps": fps}))
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**9, dim)}
    with open(tmp_path / "huge.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    ran = run_bounded("video", "localize", model, tmp_path / "huge.npy", "--steps", tmp_path / "steps.txt",
                      "--out", tmp_path / "a.png")
    one_line_error(ran, "huge.npy: declares a float32 array of shape")
    np.save(tmp_path / "nan.npy", np.full((5, dim), np.nan, np.float32))
    from cli_runs import cli_in_process  # no memory at stake here: in this process, without a start-up

    ran = cli_in_process("video", "localize", model, tmp_path / "nan.npy", "--steps", tmp_path / "steps.txt",
                         "--out", tmp_path / "b.png")
    assert ran.returncode != 0 and "nan.npy: the features holds NaN or infinite values" in " ".join(ran.stderr.split())
    ran = cli_in_process("video", "localize", model, tmp_path / "nan.npy", "--steps", tmp_path / "steps.txt",
                         "--out", tmp_path / "missing" / "c.png")
    assert ran.returncode != 0 and "missing does not exist" in " ".join(ran.stderr.split())
    np.save(tmp_path / "long.npy", np.random.default_rng(0).normal(size=(5_000, dim)).astype(np.float32))
    ran = run_bounded("video", "localize", model, tmp_path / "long.npy", "--steps", tmp_path / "steps.txt",
                      "--out", tmp_path / "d.png", timeout=300)
    assert ran.returncode == 0, ran.output
    from PIL import Image

    assert Image.open(tmp_path / "d.png").size[0] <= 4000  # 40 inches at 100 dpi, not 35 px a second


def test_frame_times_that_jump_minutes_between_frames_are_not_believed(tmp_path):
    """Three frames whose timestamps claim 0 s, 1 s and 2,049 s (a broken timescale): refused, not
    2,049 seconds of features made from three frames."""
    from fractions import Fraction

    import av
    import numpy as np
    import pytest

    from polymodal.modalities.video import VideoReadError
    from polymodal.tasks.video_features import video_seconds

    path = tmp_path / "jump.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=1)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate((0, 1000, 2_049_000)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    with pytest.raises(VideoReadError, match="jump.mp4: the frame times jump from 1.0 s to 2049.0 s"):
        list(video_seconds(path, 2, 64))
