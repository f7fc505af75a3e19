"""Region files from outside (MMF .npy + _info.npy, .npz, box tables): a few hundred bytes must not
make a reader allocate gigabytes, non-finite values are refused by name, and `polymodal regions` caps
the boxes per picture before RoI-align allocates."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
from bounded import one_line_error, run_bounded, run_python_bounded
from PIL import Image

from polymodal.data.regions import RegionReadError, read_folder, read_mmf


def _npy_header(shape, dtype="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _refused_within_2_gib(path, message: str) -> None:
    """Reading ``path`` in a process capped at 2 GiB of address space raises RegionReadError matching
    ``message`` — not MemoryError, not a kill."""
    code = (f"import re\nfrom polymodal.data.regions import RegionReadError, read_mmf, read_npz\n"
            f"try:\n    (read_npz if {str(path)!r}.endswith('.npz') else read_mmf)({str(path)!r})\n"
            f"except RegionReadError as e:\n    assert re.search({message!r}, str(e)), str(e)\n    print('refused')\n")
    ran = run_python_bounded(code, limit=2 << 30)
    assert ran.returncode == 0 and ran.stdout.strip() == "refused", ran.output


def _info(path, payload: bytes):
    """An _info.npy whose pickled body is ``payload`` (an object array's header first, as numpy writes)."""
    path.write_bytes(_npy_header((), "|O") + payload)


def test_a_tiny_info_pickle_cannot_build_a_huge_array(tmp_path):
    """`numpy.ndarray((10**8, 4))` called from a 200-byte pickle: refused, nothing allocated."""
    np.save(tmp_path / "1.npy", np.zeros((2, 8), np.float32))
    bomb = (b"\x80\x02cnumpy\nndarray\nq\x00J\x00\xe1\xf5\x05K\x04\x86q\x01\x85q\x02Rq\x03.")
    _info(tmp_path / "1_info.npy", bomb)
    _refused_within_2_gib(tmp_path / "1.npy", "refusing to load numpy.ndarray|1.npy")
    reconstruct = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01J\x00\xe1\xf5\x05K\x04"
                   b"\x86q\x02C\x01bq\x03\x87q\x04Rq\x05.")
    _info(tmp_path / "1_info.npy", reconstruct)
    with pytest.raises(RegionReadError, match="refusing to build an array of shape"):
        read_mmf(tmp_path / "1.npy")
    # numpy's own pickle of a real info dict still loads
    info = np.array({"bbox": np.zeros((2, 4), np.float32) + [0, 0, 5, 5], "image_width": 10, "image_height": 10},
                    dtype=object)
    np.save(tmp_path / "1_info.npy", info, allow_pickle=True)
    assert len(read_mmf(tmp_path / "1.npy")) == 2


def test_npy_and_npz_that_declare_huge_arrays_are_refused_before_allocation(tmp_path):
    (tmp_path / "2.npy").write_bytes(_npy_header((10**10, 2048)) + b"\x00" * 64)
    np.save(tmp_path / "2_info.npy", np.array({"bbox": np.zeros((1, 4)), "image_width": 9, "image_height": 9},
                                              dtype=object), allow_pickle=True)
    _refused_within_2_gib(tmp_path / "2.npy", "declares a float32 array of shape")
    bomb = tmp_path / "bomb.npz"  # 1.5 GB of zeros deflates to ~1.5 MB; here 600 MB to ~600 KB
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("features.npy", "w", force_zip64=True) as f:
            f.write(_npy_header((150_000_000,)))
            chunk = b"\x00" * (1 << 24)
            for _ in range(600_000_000 // len(chunk)):
                f.write(chunk)
    assert bomb.stat().st_size < 2_000_000
    _refused_within_2_gib(bomb, "inflate to .* bytes, more than")


def test_non_finite_features_and_boxes_are_refused_by_name(tmp_path):
    np.savez(tmp_path / "a.npz", boxes=np.array([[0, 0, 5, np.inf]], np.float32), features=np.ones((1, 4), np.float32),
             image_w=9, image_h=9)
    np.savez(tmp_path / "b.npz", boxes=np.array([[0, 0, 5, 5]], np.float32), features=np.full((1, 4), np.nan, np.float32),
             image_w=9, image_h=9)
    np.savez(tmp_path / "c.npz", boxes=np.array([[0, 0, 5, 5]], np.float32), features=np.ones((1, 4), np.float32),
             image_w=9, image_h=9)
    found, errors = read_folder(tmp_path)
    assert list(found) == ["c"]
    assert any("a.npz boxes holds NaN or infinite values" in e for e in errors)
    assert any("b.npz features holds NaN or infinite values" in e for e in errors)


def test_regions_caps_the_boxes_per_picture_before_roi_align(tmp_path, tiny_clip):
    Image.new("RGB", (64, 48)).save(tmp_path / "p.png")
    Image.new("RGB", (64, 48)).save(tmp_path / "q.png")
    table = {"p.png": [[0, 0, 8, 8]] * 200_000, "q.png": [[0, 0, 8, 8]]}
    (tmp_path / "boxes.json").write_text(json.dumps(table))
    ran = run_bounded("regions", tmp_path / "p.png", tmp_path / "q.png", "--boxes", tmp_path / "boxes.json",
                      "--checkpoint", tiny_clip, "--out", tmp_path / "out")
    assert ran.returncode == 1
    one_line_error(ran, "p.png", "200000 boxes: more than the 1000 regions")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["q.npz"]


def test_a_pickled_callable_in_an_info_file_is_refused(tmp_path):
    np.save(tmp_path / "3.npy", np.zeros((1, 4), np.float32))

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    _info(tmp_path / "3_info.npy", pickle.dumps({"bbox": Boom()}, protocol=2))
    with pytest.raises(RegionReadError, match="refusing to load"):
        read_mmf(tmp_path / "3.npy")
