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
