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
