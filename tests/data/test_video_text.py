"""Video–text annotation readers: timed CSV/TSV/JSONL rows and MSR-VTT JSON; bad rows are named
and skipped, the rest load."""

import json

import pytest

from polymodal.data.video_text import TimedText, VideoTextFormatError, read_msrvtt, read_timed_texts


def test_csv_rows_load_and_bad_ones_are_named(tmp_path):
    path = tmp_path / "caps.csv"
    path.write_text("video,start,end,text\n"
                    "a.mp4,0,2.5,pour water into the pan\n"
                    "a.mp4,3,two,stir the egg\n"
                    "b.mp4,5,4,backwards\n"
                    ",1,2,no video\n"
                    "b.mp4,1,2,\"crack, then whisk\"\n")
    rows, problems = read_timed_texts(path)
    assert rows == [TimedText("a.mp4", 0.0, 2.5, "pour water into the pan"), TimedText("b.mp4", 1.0, 2.0, "crack, then whisk")]
    assert [p.split(": ")[0] for p in problems] == [f"{path}:3", f"{path}:4", f"{path}:5"]
    assert "not numbers" in problems[0] and "start < end" in problems[1] and "missing ['video']" in problems[2]


def test_jsonl_and_tsv(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"video": "v", "start": 1, "end": 3, "text": "cut"}\n\nnot json\n[1]\n'
                                      '{"video": "v", "start": "nan", "end": 3, "text": "x"}\n')
    rows, problems = read_timed_texts(tmp_path / "c.jsonl")
    assert rows == [TimedText("v", 1.0, 3.0, "cut")] and len(problems) == 3
    assert "c.jsonl:3: not JSON" in problems[0] and "c.jsonl:4: not a JSON object" in problems[1]
    (tmp_path / "c.tsv").write_text("video\tstart\tend\ttext\nv\t0\t1\tchop\n")
    assert read_timed_texts(tmp_path / "c.tsv")[0] == [TimedText("v", 0.0, 1.0, "chop")]
    (tmp_path / "bad.csv").write_text("clip,from,to,caption\n")
    with pytest.raises(VideoTextFormatError, match="bad.csv: the header must name"):
        read_timed_texts(tmp_path / "bad.csv")
    (tmp_path / "c.txt").write_text("video,start,end,text\n")
    with pytest.raises(VideoTextFormatError, match="c.txt: expected .csv"):
        read_timed_texts(tmp_path / "c.txt")


def test_msrvtt(tmp_path):
    path = tmp_path / "train_val_videodatainfo.json"
    path.write_text(json.dumps({"videos": [{"video_id": "video0", "split": "train"},
                                           {"video_id": "video1", "split": "validate"}],
                                "sentences": [{"video_id": "video0", "caption": "a man cooks", "sen_id": 0},
                                              {"video_id": "video1", "caption": "a cat", "sen_id": 1},
                                              {"video_id": "video9", "caption": "lost", "sen_id": 2},
                                              {"video_id": "video0", "sen_id": 3}]}))
    rows, problems = read_msrvtt(path, split="train")
    assert rows == [TimedText("video0", None, None, "a man cooks")]
    assert len(problems) == 2 and "unknown video 'video9'" in problems[0] and "sentence 3 lacks" in problems[1]
    assert len(read_msrvtt(path)[0]) == 2
    (tmp_path / "other.json").write_text("[]")
    with pytest.raises(VideoTextFormatError, match="other.json: expected an object"):
        read_msrvtt(tmp_path / "other.json")
