"""Real files that are not hostile but were refused or misread: maps with invalid pixels."""

import numpy as np
import pytest

from polymodal.modalities.maps import MapReadError, load_map


def test_a_disparity_map_with_invalid_pixels_is_read_with_them_missing(tmp_path):
    disparity = np.full((48, 64), 12.5, np.float32)
    disparity[:, :8] = np.inf  # no stereo match on the left edge: the usual convention
    disparity[0, 20] = np.nan
    np.save(tmp_path / "scene_depth.npy", disparity)
    m = load_map(tmp_path / "scene_depth.npy")
    assert bool(np.isfinite(m.numpy()).all()) and float(m[0, 0]) == pytest.approx(12.5)
    np.save(tmp_path / "blank_depth.npy", np.full((4, 4), np.inf, np.float32))
    with pytest.raises(MapReadError, match="blank_depth.npy: every value of the map is NaN or infinite"):
        load_map(tmp_path / "blank_depth.npy")


def test_a_multi_page_tiff_is_indexed_page_by_page(tmp_path, tiny_clip):
    import sqlite3

    from bounded import run_bounded
    from PIL import Image, ImageDraw

    folder = tmp_path / "scans"
    folder.mkdir()
    pages = []
    for i in range(3):
        im = Image.new("1", (400, 500), 1)
        ImageDraw.Draw(im).rectangle((20, 20 + 100 * i, 200, 80 + 100 * i), fill=0)
        pages.append(im)
    pages[0].save(folder / "scan.tif", save_all=True, append_images=pages[1:], compression="group4")
    ran = run_bounded("index", folder, "--model", tiny_clip, "--out", tmp_path / "idx")
    assert ran.returncode == 0, ran.output
    db = sqlite3.connect(next((tmp_path / "idx").glob("*.sqlite*")))
    rows = sorted(db.execute("SELECT path, modality, page FROM items WHERE error IS NULL").fetchall())
    assert [(p.rsplit("/", 1)[-1], m, n) for p, m, n in rows] == [
        ("scan.tif#page=1", "image", 1), ("scan.tif#page=2", "image", 2), ("scan.tif#page=3", "image", 3)]

    from polymodal.server.media import picture_png

    data = (folder / "scan.tif").read_bytes()
    assert picture_png(data, "scan.tif", 2) != picture_png(data, "scan.tif", 1)  # each page previews itself
