"""Model folders a hostile user hands over: files carried along (export, convert) must be regular files
that really live inside the folder."""

import shutil

from bounded import one_line_error, run_bounded


def test_export_never_copies_what_a_tokenizer_link_points_to(tmp_path, tiny_clip):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$hash:19000:0:99999:7:::\n")
    folder = tmp_path / "model"
    shutil.copytree(tiny_clip, folder)
    (folder / "special_tokens_map.json").unlink(missing_ok=True)
    (folder / "special_tokens_map.json").symlink_to(secret)
    ran = run_bounded("export", folder, "--format", "onnx", "--out", tmp_path / "out")
    assert ran.returncode != 0
    one_line_error(ran, "special_tokens_map.json is a symbolic link")
    assert not any("root:" in p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file()) \
        if (tmp_path / "out").exists() else True


def test_export_refuses_a_fifo_among_the_tokenizer_files_without_hanging(tmp_path, tiny_clip):
    import os

    folder = tmp_path / "model"
    shutil.copytree(tiny_clip, folder)
    os.mkfifo(folder / "merges.txt")
    ran = run_bounded("export", folder, "--format", "onnx", "--out", tmp_path / "out", timeout=60)
    assert ran.returncode != 0
    one_line_error(ran, "merges.txt is not a regular file")


def test_a_frame_tower_record_with_a_hostile_fps_is_refused_by_name(tmp_path):
    import json

    import pytest

    from polymodal.tasks.video_search import FRAME_TOWER, frame_tower_record

    for fps in (0, -3, 10**9, "2", 2.5, True):
        (tmp_path / FRAME_TOWER).write_text(json.dumps({"tower": str(tmp_path), "fps": fps}))
        with pytest.raises(ValueError, match=r"frame_tower.json: fps must be a whole number of frames per second in 1..60"):
            frame_tower_record(tmp_path)


def test_a_region_tower_record_with_hostile_sizes_is_refused_by_name(tmp_path):
    import json

    import pytest

    from polymodal.tasks.region_tower import REGION_TOWER_FILE, load_region_tower

    for key, value in (("image_size", 20000), ("max_regions", 10**9), ("image_size", -1)):
        record = {"tower": str(tmp_path), "image_size": 64, "max_regions": 5, key: value}
        (tmp_path / REGION_TOWER_FILE).write_text(json.dumps(record))
        with pytest.raises(ValueError, match=f"region_tower.json: {key} must be a whole number"):
            load_region_tower(tmp_path)
