"""Issue 12's messy folder: bombs refused from their headers, files that vanish or cannot be read
mid-run, NaN sensors, long UTF-8, odd names, sounds and pictures recognised by their bytes. One bad
file is that file's error; the run and the rest of the folder carry on."""

import subprocess
import sys
import tracemalloc

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from hostile_files import flac_bomb, pdf_bomb, png_header_bomb, png_pixel_bomb, video_bomb
from PIL import Image

from polymodal.modalities.audio import AudioReadError, audio_clips, audio_clips_from_file, load_audio
from polymodal.modalities.image import ImageReadError, load_image
from polymodal.modalities.pdf import MAX_RENDER_SIDE, pdf_page, pdf_pages
from polymodal.modalities.video import VideoReadError, clip_frame_indices, load_video, video_clips
from polymodal.search import ingest
from polymodal.search.detect import detect
from polymodal.search.ingest import index_folder
from polymodal.search.store import Store
from polymodal.tasks import Embedder


@pytest.fixture(scope="module")
def embedder(model_dir):
    return Embedder.from_checkpoint(model_dir)


def _index(folder, embedder, out):
    store = Store(out, embedder.dim, embedder.model_id, str(embedder.model_dir))
    return store, index_folder(folder, embedder, store, batch=8)


def _peak_mb(fn) -> float:
    """Peak Python/numpy allocation while ``fn`` runs, in MB (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_image_bombs_are_refused_from_the_header(tmp_path):
    with pytest.raises(ImageReadError, match=r"pixel limit"):
        load_image(png_header_bomb(tmp_path / "claims.png"))  # Pillow's own DecompressionBombError
    bomb = png_pixel_bomb(tmp_path / "big.png")  # 100 M pixels in 97 KB
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ImageReadError, match=r"big.png: image of 10000×10000 pixels is over the 64 M pixel limit"):
        load_image(bomb)


def test_video_decodes_only_the_sampled_frames(tmp_path):
    video = video_bomb(tmp_path / "long.mp4", frames=3000, width=160, height=120)  # 173 MB as RGB frames
    clips = None

    def run():
        nonlocal clips
        clips = load_video(video, clips=5, frames_per_clip=2)

    assert _peak_mb(run) < 20
    assert clips.shape[:3] == (5, 3, 2)
    small = video_bomb(tmp_path / "short.mp4", frames=30, width=32, height=32)  # same clips as decoding all
    with av.open(str(small)) as c:
        every = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert (load_video(small, 5, 2) - video_clips(every, 5, 2)).abs().max() == 0
    assert clip_frame_indices(30, 5, 2).max() == 29
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(100))
    with pytest.raises(VideoReadError, match="bad.mp4"):
        load_video(tmp_path / "bad.mp4")


@pytest.mark.slow
def test_long_audio_is_read_by_windows(tmp_path):
    bomb = flac_bomb(tmp_path / "hour.flac", seconds=3600)  # 1.4 GB of float32 samples, ~700 KB on disk
    assert _peak_mb(lambda: audio_clips_from_file(bomb)) < 50
    with pytest.raises(AudioReadError, match="hour.flac: 3600 s is too long to read whole"):
        load_audio(bomb)
    t = np.arange(16000 * 700) / 16000  # 700 s: past the whole-file limit, so read by windows
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 0.01 * t)).astype(np.float32)
    sf.write(tmp_path / "tone.wav", wave, 16000, subtype="FLOAT")
    assert (audio_clips_from_file(tmp_path / "tone.wav") - audio_clips(torch.from_numpy(wave))).abs().max() < 1e-5


def test_pdf_pages_render_at_a_bounded_size(tmp_path):
    bomb = pdf_bomb(tmp_path / "wide.pdf")  # 14400 × 10 pt pages
    assert bomb.stat().st_size < 2000
    page = pdf_page(bomb, 2, short_side=512)
    assert max(page.size) <= MAX_RENDER_SIDE
    assert all(max(p.size) <= MAX_RENDER_SIDE for p in pdf_pages(bomb, 224))


def test_sounds_pictures_and_videos_are_recognised_by_their_bytes(tmp_path):
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    sf.write(tmp_path / "bell.oga", wave, 16000, format="OGG", subtype="VORBIS")  # freedesktop's sound theme
    sf.write(tmp_path / "noext", wave, 16000, format="FLAC")
    for name, container, codec, rate in [("voice.m4a", "mp4", "aac", 16000), ("voice.aac", "adts", "aac", 16000),
                                         ("voice.opus", "ogg", "libopus", 48000),
                                         ("voice.webm", "webm", "libopus", 48000)]:  # only PyAV reads these
        with av.open(str(tmp_path / name), "w", format=container) as c:
            stream = c.add_stream(codec, rate=rate)
            frame = av.AudioFrame.from_ndarray(np.repeat(wave, rate // 16000)[None], format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                c.mux(packet)
    picture = Image.fromarray(rng.integers(0, 255, (20, 30, 3), np.uint8))
    picture.save(tmp_path / "photo.webp")
    picture.save(tmp_path / "scan.tif")
    picture.save(tmp_path / "icon.bmp")
    video_bomb(tmp_path / "clip.mkv.bin", frames=10, width=32, height=32)  # an MP4 whatever its name says
    video_bomb(tmp_path / "film.mkv", frames=10, width=32, height=32, container="matroska")
    kinds = {p.name: detect(p) for p in tmp_path.iterdir()}
    audio = ("bell.oga", "noext", "voice.m4a", "voice.aac", "voice.opus", "voice.webm")
    assert kinds == {**dict.fromkeys(audio, "audio"), "photo.webp": "image", "scan.tif": "image", "icon.bmp": "image",
                     "clip.mkv.bin": "video", "film.mkv": "video"}
    assert load_video(tmp_path / "film.mkv", 2, 2).shape[:3] == (2, 3, 2)
    for name in audio:
        assert load_audio(tmp_path / name).shape[0] > 15000
    for name in ("photo.webp", "scan.tif", "icon.bmp"):
        assert load_image(tmp_path / name).size == (30, 20)


def test_one_bad_file_never_stops_the_run(tmp_path, embedder, monkeypatch, world_files):
    folder = world_files(tmp_path / "files", 2)
    png_header_bomb(folder / "bomb.png")
    imu = np.zeros((6, 64), np.float32)
    imu[2, 5] = np.nan
    np.save(folder / "walk_imu.npy", imu)
    (folder / "long.txt").write_text("€" * (2**20 // 3 + 5))  # over 1 MiB: the cut falls inside a character
    (folder / "notes#page=2.txt").write_text("a red circle")
    (folder / "locked.txt").write_text("a blue square")
    walk, digest = ingest.walk, ingest.sha256_of

    def walk_with_a_vanished_file(root, skip=None):  # the file was listed, then deleted before stat
        return walk(root, skip) + [root / "vanished.png"]

    def unreadable(path):
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return digest(path)

    monkeypatch.setattr(ingest, "walk", walk_with_a_vanished_file)
    monkeypatch.setattr(ingest, "sha256_of", unreadable)
    store, report = _index(folder, embedder, tmp_path / "idx")
    failed = dict(report.failed)
    assert set(failed) == {str(folder / n) for n in ("bomb.png", "walk_imu.npy", "locked.txt")}
    assert "pixel limit" in failed[str(folder / "bomb.png")]
    assert "finite" in failed[str(folder / "walk_imu.npy")]
    assert "Permission denied" in failed[str(folder / "locked.txt")]
    counts = store.counts()
    assert counts["indexed"]["text"] == 4 and counts["failed"] == 3  # 2 captions + long.txt + notes#page=2.txt
    monkeypatch.setattr(ingest, "sha256_of", digest)
    store, again = _index(folder, embedder, tmp_path / "idx")
    assert again.added == again.updated == 0 and again.unchanged == counts["failed"] + sum(counts["indexed"].values())


def test_search_with_a_bomb_is_an_error_line(tmp_path, model_dir, world_files, embedder):
    folder = world_files(tmp_path / "files", 1)
    _index(folder, embedder, tmp_path / "idx")
    bomb = png_header_bomb(tmp_path / "bomb.png")
    r = subprocess.run([sys.executable, "-m", "polymodal.cli", "search", str(tmp_path / "idx"), "--file", str(bomb)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "error:" in r.stderr and "pixel limit" in r.stderr.replace("\n", " ")
    assert "Traceback" not in r.stderr
