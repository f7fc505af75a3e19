"""``polymodal detect`` and ``polymodal regions --detector`` on real photographs (tests/pictures), with
the tiny detector of tests/fixtures/frcnn_vg: labelled pictures, region files each reader reads, bad
pictures reported while the rest go on."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli_runs import cli_in_process
from polymodal.data.regions import read_folder, read_npz, read_tsv

PICTURES = Path(__file__).parents[1] / "pictures"
DETECTOR = Path(__file__).parents[1] / "fixtures" / "frcnn_vg"
POLYMODAL = [sys.executable, "-m", "polymodal.cli"]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(PICTURES / name, folder)
    (folder / "broken.jpg").write_bytes((PICTURES / "coffee.jpg").read_bytes()[:300])  # a truncated download
    return folder


def test_detect_draws_and_writes_mmf_files_and_reports_a_broken_picture(photos, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([*POLYMODAL, "detect", photos / "chelsea.jpg", photos / "broken.jpg", photos / "coffee.jpg",
                           "--detector", DETECTOR, "--out", out, "--format", "mmf"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 1, proc.stderr
    assert "broken.jpg" in proc.stderr and "chelsea.jpg" not in proc.stderr
    assert "chelsea.jpg" in proc.stdout and "wrote 2 picture(s)" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "chelsea.detected.png", "chelsea.npy", "chelsea_info.npy", "coffee.detected.png", "coffee.npy", "coffee_info.npy"]
    regions, errors = read_folder(out)
    assert errors == [] and sorted(regions) == ["chelsea", "coffee"]
    cat = regions["chelsea"]
    assert (cat.image_w, cat.image_h) == (200, 133)
    assert 20 <= len(cat) <= 24 and cat.features.shape[1] == 128  # the fixture detector's 20–24 boxes, 128-d
    assert (cat.boxes[:, 0] >= 0).all() and (cat.boxes[:, 2] <= 200).all() and (cat.boxes[:, 3] <= 133).all()
    assert cat.class_probs.shape == (len(cat), 13)
    drawn = Image.open(out / "chelsea.detected.png")
    assert drawn.size == (200, 133)
    assert drawn.convert("RGB").tobytes() != Image.open(photos / "chelsea.jpg").convert("RGB").tobytes()


def test_box_counts_formats_and_the_regions_command(photos, tmp_path):
    r = cli_in_process("detect", photos / "chelsea.jpg", photos / "coffee.jpg", "--detector", DETECTOR,
                       "--out", tmp_path / "tsv", "--format", "tsv", "--boxes", "5", "--no-draw")
    assert r.returncode == 0, r.stderr
    rows, errors = read_tsv(tmp_path / "tsv" / "regions.tsv", feature_dim=128)
    assert errors == [] and {k: len(v) for k, v in rows.items()} == {"chelsea": 5, "coffee": 5}
    assert sorted(p.name for p in (tmp_path / "tsv").iterdir()) == ["regions.tsv"]
    # The bottom-up rule with a score nobody reaches still gives each picture its minimum.
    r = cli_in_process("regions", photos / "chelsea.jpg", photos / "broken.jpg", "--detector", DETECTOR,
                       "--out", tmp_path / "npz", "--count", "3-6")
    assert r.returncode == 1 and "broken.jpg" in r.stderr
    cat = read_npz(tmp_path / "npz" / "chelsea.npz")
    assert 3 <= len(cat) <= 6
    r = cli_in_process("detect", photos / "coffee.jpg", "--detector", DETECTOR, "--out", tmp_path / "b",
                       "--selection", "bottom-up", "--threshold", "0.99", "--boxes", "4-9")
    assert r.returncode == 0, r.stderr
    assert len(read_npz(tmp_path / "b" / "coffee.npz")) == 4


def test_bad_arguments_are_named(photos, tmp_path, tower):
    r = cli_in_process("detect", photos / "coffee.jpg", "--detector", DETECTOR, "--out", tmp_path / "o", "--boxes", "9-3")
    assert r.returncode != 0 and "need 1 ≤ min ≤ max" in r.stderr
    r = cli_in_process("detect", photos / "coffee.jpg", "--detector", tower, "--out", tmp_path / "o")
    assert r.returncode != 0 and "not a detector" in r.stderr
    r = cli_in_process("detect", photos / "coffee.jpg", "--detector", DETECTOR, "--out", tmp_path / "o", "--format", "xml")
    assert r.returncode != 0 and "unknown region format 'xml'" in r.stderr
    r = cli_in_process("regions", photos / "coffee.jpg", "--detector", DETECTOR, "--boxes", tmp_path / "b.json",
                       "--out", tmp_path / "o")
    assert r.returncode != 0 and "without --boxes and --checkpoint" in r.stderr
    r = cli_in_process("detect", photos / "coffee.jpg", photos / "coffee.jpg", "--detector", DETECTOR,
                       "--out", tmp_path / "twice", "--no-draw")
    assert r.returncode == 1 and "already writes coffee" in r.stderr
