"""VideoCLIP on video files: the world's how-to videos exported as .mp4 + transcript, clip windows,
features from the file matching the ones training used, `polymodal video search` (an index of clips
with their times), `polymodal index` with a VideoCLIP, and localisation from a raw video."""

import csv
import json

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from polymodal.cli import app
from polymodal.tasks.embedder import frame_backbone
from polymodal.tasks.video_search import CLIP, clip_embeddings, clip_windows


@pytest.fixture(scope="module")
def videoclip_run(tmp_path_factory, tower, minilm_dir):
    """A videoclip-tiny trained for one step on world how-to features (its folder names the frame tower)."""
    from polymodal.train.config import load_config
    from polymodal.train.trainer import run

    out = tmp_path_factory.mktemp("videoclip")
    run(load_config(None, ["objective.kind=videoclip", "model.preset=videoclip-tiny", f"data.frame_tower={tower}",
                           f"data.tokenizer={minilm_dir}", "data.context_length=32", "data.train_n=8", "data.val_n=3",
                           "train.batch_size=8", "train.steps=1", "train.threads=1", f"train.out={out}"]))
    return out / "model"


@pytest.fixture(scope="module")
def howto_files(tmp_path_factory):
    from polymodal.world.export import export_howto

    out = tmp_path_factory.mktemp("howto")
    export_howto(out, "val", 2, seed=0)
    return out


def test_clip_windows_cover_the_video():
    assert clip_windows(10, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert clip_windows(11, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10), (7, 11)]
    assert clip_windows(3, 4, 2) == [(0, 3)]
    with pytest.raises(ValueError, match="≥ 1 s"):
        clip_windows(10, 0, 2)


def test_exported_howto_files_carry_the_transcript_and_true_steps(howto_files):
    from polymodal.data.video_text import read_timed_texts
    from polymodal.world.howto import howto_video

    rows, problems = read_timed_texts(howto_files / "narration.csv")
    steps, _ = read_timed_texts(howto_files / "steps.csv")
    assert not problems and {r.video for r in rows} == {"val-00000.mp4", "val-00001.mp4"}
    truth = howto_video(0, "val", 1)
    assert [s.text for s in steps if s.video == "val-00001.mp4"] == [s.text for s in truth.steps]
    assert sorted(howto_files.joinpath("videos").iterdir())[0].read_bytes()[4:8] == b"ftyp"


@pytest.mark.slow
def test_features_from_the_mp4_match_the_ones_training_reads(videoclip_run, howto_files, tower):
    """The file path (decode at 4 fps → the tower's processor) and the training path (rendered frames →
    normalise) give the same per-second features, up to H.264 at crf 12."""
    from polymodal.world.sources.video import world_howto_features
    from polymodal.train.videoclip import frame_embedder

    assert json.loads((videoclip_run / "frame_tower.json").read_text())["fps"] == 4
    backbone = frame_backbone(videoclip_run)
    from polymodal.tasks.video_features import video_features

    from_file = torch.from_numpy(video_features(howto_files / "videos" / "val-00001.mp4", backbone))
    rendered = world_howto_features("val", 2, 0, frame_embedder(str(tower))).features[1]
    assert from_file.shape == rendered.shape
    assert F.cosine_similarity(from_file, rendered, dim=1).min() > 0.98


def test_video_search_indexes_clips_and_answers_with_times(videoclip_run, howto_files, tmp_path):
    import shutil

    from polymodal.search.store import Store
    from polymodal.tasks import Embedder

    folder = tmp_path / "videos"
    shutil.copytree(howto_files / "videos", folder)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    (folder / "notes.txt").write_text("not a video")
    query = "the red circle moves left"
    before = sorted(p.name for p in folder.iterdir())
    out = CliRunner().invoke(app, ["video", "search", str(videoclip_run), str(folder), query, "-k", "50"],
                             env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert out.exit_code == 0, out.output
    flat = "".join(out.output.split())
    assert "skipped" in flat and "broken.mp4" in flat
    lines = [line.split() for line in out.output.splitlines() if line.split() and line.split()[0].isdigit()]
    assert {line[-1] for line in lines} == {"val-00000.mp4", "val-00001.mp4"} and [line[0] for line in lines][:3] == ["1", "2", "3"]
    assert sorted(p.name for p in folder.iterdir()) == before  # searching a folder writes nothing into it
    from polymodal.tasks.video_search import video_index_dir

    with __import__("unittest.mock").mock.patch.dict("os.environ", {"XDG_CACHE_HOME": str(tmp_path / "cache")}):
        index = video_index_dir(folder, videoclip_run)
    assert index.is_relative_to(tmp_path / "cache" / "polymodal" / "video-index")
    store = Store(index)
    embedder = Embedder.from_checkpoint(videoclip_run)
    # Every clip is an item FILE#t=START,END whose vector is the clip's embedding computed directly.
    features = embedder.video_clips.features(folder / "val-00000.mp4")
    windows, direct = clip_embeddings(embedder.model, features)
    items = {item.path: item for item, _ in store.search(embedder.embed_texts([query])[0].numpy(), 200, {"video"})}
    for (a, b), vector in zip(windows, direct):
        item = items[f"{folder / 'val-00000.mp4'}{CLIP}{a:g},{b:g}"]
        assert torch.allclose(torch.tensor(store.vector(item.id)), vector, atol=1e-5)
    assert windows[-1][1] == len(features)
    # The printed ranking is the index's: the top clip's score is its cosine with the query.
    top_item, top_score = store.search(embedder.embed_texts([query])[0].numpy(), 1, {"video"})[0]
    assert f"{top_score:.3f}" in out.output
    again = CliRunner().invoke(app, ["video", "search", str(videoclip_run), str(folder), query])
    counts = store.counts()
    assert again.exit_code == 0 and counts["indexed"]["video"] == len(items) and counts["failed"] == 1


def test_localize_reads_a_raw_video(videoclip_run, howto_files, tmp_path):
    rows = list(csv.DictReader(open(howto_files / "steps.csv")))
    (tmp_path / "steps.txt").write_text("\n".join(r["text"] for r in rows if r["video"] == "val-00000.mp4"))
    out = CliRunner().invoke(app, ["video", "localize", str(videoclip_run), str(howto_files / "videos" / "val-00000.mp4"),
                                   "--steps", str(tmp_path / "steps.txt"), "--out", str(tmp_path / "t.png")])
    assert out.exit_code == 0, out.output
    assert len([line for line in out.output.splitlines() if " s  " in line]) == sum(r["video"] == "val-00000.mp4" for r in rows)
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all")
    bad = CliRunner().invoke(app, ["video", "localize", str(videoclip_run), str(tmp_path / "bad.mp4"),
                                   "--steps", str(tmp_path / "steps.txt")])
    assert bad.exit_code == 2 and "bad.mp4" in "".join(bad.output.split())


def test_polymodal_index_with_a_videoclip_stores_clips(videoclip_run, howto_files, tmp_path):
    out = CliRunner().invoke(app, ["index", str(howto_files / "videos"), "--model", str(videoclip_run),
                                   "--out", str(tmp_path / "idx")])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output[out.output.index("{"):])["indexed"]["video"] > 4  # ≥ 3 clips per 15 s video
    found = CliRunner().invoke(app, ["search", str(tmp_path / "idx"), "a blue star appears", "--modality", "video", "--min-relevance", "0"])
    assert found.exit_code == 0 and "#t=" in "".join(found.output.replace("│", " ").split())  # the path folds


def test_world_howto_command_writes_videos_and_transcripts(tmp_path):
    out = CliRunner().invoke(app, ["world", "howto", "--out", str(tmp_path / "h"), "--n", "1", "--split", "test"])
    assert out.exit_code == 0, out.output
    assert [p.name for p in (tmp_path / "h" / "videos").iterdir()] == ["test-00000.mp4"]
    assert (tmp_path / "h" / "narration.csv").read_text().startswith("video,start,end,text\ntest-00000.mp4,")
    bad = CliRunner().invoke(app, ["world", "howto", "--out", str(tmp_path / "x"), "--shift-rate", "2"])
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()
