"""Videos as moments: a long video is indexed as 5 s moments (image towers) with their start and end,
each holding the words its subtitles say then (sidecar .srt/.vtt files and embedded streams)."""

import pytest

from polymodal.search.hybrid import hybrid_search
from polymodal.search.ingest import index_folder
from polymodal.search.store import Store
from polymodal.search.texts import read_cues
from polymodal.search.words import word_search
from polymodal.tasks import Embedder
from text_files import srt, video


@pytest.fixture(scope="module")
def embedder(model_dir):
    return Embedder.from_checkpoint(model_dir)


@pytest.fixture()
def folder(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    (tmp_path / "inside.srt").write_text(srt([(1, 3.5, "Hello <i>world</i>"), (5, 7, "The invoice 4471 arrives")]))
    video(folder / "long.mkv", 12, subtitles=tmp_path / "inside.srt")
    video(folder / "walk.mp4", 12)
    (folder / "walk.srt").write_text(srt([(6, 8, "a red kite lands on the fence")]))
    video(folder / "short.mp4", 2)
    return folder


def _paths(store, hits):
    return [store.item(h.item_id).path for h in hits]


def test_long_videos_are_moments_with_the_words_said_in_them(tmp_path, folder, model_dir, embedder):
    store = Store(tmp_path / "idx", embedder.dim, embedder.model_id, str(model_dir))
    report = index_folder(folder, embedder, store)
    assert report.failed == [] and report.added == 3  # walk.srt belongs to walk.mp4: no item of its own
    moments = dict(store.db.execute("SELECT path, t_start || '-' || t_end FROM items WHERE file = ?",
                                    (str(folder / "long.mkv"),)))
    assert moments == {f"{folder / 'long.mkv'}#t=0,4": "0.0-4.0", f"{folder / 'long.mkv'}#t=4,8": "4.0-8.0",
                       f"{folder / 'long.mkv'}#t=8,12": "8.0-12.0"}
    assert _paths(store, word_search(store.db, "invoice 4471", 5)) == [f"{folder / 'long.mkv'}#t=4,8"]
    assert _paths(store, word_search(store.db, "hello", 5)) == [f"{folder / 'long.mkv'}#t=0,4"]
    assert _paths(store, word_search(store.db, "kite", 5)) == [f"{folder / 'walk.mp4'}#t=4,8"]
    short = store.db.execute("SELECT path, t_start FROM items WHERE file = ?", (str(folder / "short.mp4"),)).fetchall()
    assert short == [(str(folder / "short.mp4"), None)]  # shorter than two moments: one item
    hit = hybrid_search(store, None, "kite", 3, mode="words").hits[0].to_json()
    assert (hit["start"], hit["end"]) == (4.0, 8.0)


def test_a_changed_sidecar_rereads_its_video_and_a_bad_one_is_reported(tmp_path, folder, model_dir, embedder):
    store = Store(tmp_path / "idx", embedder.dim, embedder.model_id, str(model_dir))
    index_folder(folder, embedder, store)
    (folder / "walk.srt").write_text(srt([(1, 2, "an eagle circles")]))
    report = index_folder(folder, embedder, store)
    assert (report.updated, report.unchanged) == (1, 2)
    assert word_search(store.db, "kite", 5) == [] and _paths(store, word_search(store.db, "eagle", 5)) == [
        f"{folder / 'walk.mp4'}#t=0,4"]
    (folder / "walk.srt").write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nun caf\xe9 cr\xe8me\n")  # cp1252
    report = index_folder(folder, embedder, store)
    assert report.failed == [] and any("walk.srt: subtitles are not UTF-8" in note for _, note in report.partial)
    assert store.db.execute("SELECT COUNT(*) FROM items WHERE file = ? AND vector IS NOT NULL",
                            (str(folder / "walk.mp4"),)).fetchone()[0] == 3  # the video lost nothing


def test_a_lone_subtitle_file_is_text_and_hostile_sizes_are_refused(tmp_path):
    lone = tmp_path / "talk.srt"
    lone.write_text(srt([(0, 1, "opening words")]))
    assert [c.text for c in read_cues(lone)] == ["opening words"]
    vtt = tmp_path / "talk.vtt"
    vtt.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:03.500\n<v Ann>Hello from <b>WebVTT</b>\n\n"
                   "00:05.000 --> 00:07.000\nsecond cue\n")
    cues = read_cues(vtt)
    assert [(c.start, c.end, c.text) for c in cues] == [(1.0, 3.5, "Hello from WebVTT"), (5.0, 7.0, "second cue")]
    huge = tmp_path / "huge.srt"
    with open(huge, "wb") as f:
        f.truncate(9 * 2**20)
    with pytest.raises(ValueError, match="over the 8 MiB limit"):
        read_cues(huge)
