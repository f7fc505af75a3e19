"""Region features from the formats people have: bottom-up TSV, MMF .npy + _info.npy, .npz; bad
rows and files are named and the rest loads; pickled info files run no code."""

import base64
import pickle

import numpy as np
import pytest
import torch

from polymodal.data.regions import (RegionFeatures, RegionReadError, Regions, read_folder, read_mmf, read_npz,
                                    read_tsv)

D = 8


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.astype(np.float32).tobytes()).decode()


def _row(image_id: str, n: int, w=100, h=50, seed=0) -> tuple[str, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    boxes = np.sort(rng.uniform(0, 50, (n, 4)), axis=1).astype(np.float32)
    feats = rng.normal(size=(n, D)).astype(np.float32)
    return "\t".join([image_id, str(w), str(h), str(n), _b64(boxes), _b64(feats)]), boxes, feats


def test_tsv_rows_load_and_bad_rows_are_named(tmp_path):
    good, boxes, feats = _row("img1", 3)
    other, _, _ = _row("img2", 2, seed=1)
    short = _row("img3", 3)[0].rsplit("\t", 1)[0] + "\t" + _b64(np.zeros((2, D)))  # features for 2 boxes, says 3
    lines = [good, "img4\t100\t50\tthree\txx\tyy", short, other, "img5\t1\t1\t5000\t\t", "x" * 200_000]
    (tmp_path / "r.tsv").write_text("\n".join(lines) + "\n")
    regions, errors = read_tsv(tmp_path / "r.tsv", feature_dim=D)
    assert sorted(regions) == ["img1", "img2"]
    torch.testing.assert_close(regions["img1"].features, torch.from_numpy(feats))
    torch.testing.assert_close(regions["img1"].boxes, torch.from_numpy(boxes))
    assert len(errors) == 4
    assert "r.tsv:2 (img4)" in errors[0] and "invalid literal" in errors[0]
    assert "r.tsv:3 (img3): features:" in errors[1] and "expected 3 × 8 float32" in errors[1]
    assert "r.tsv:5 (img5): num_boxes 5000 is not in 1..1000" in errors[2]
    assert "r.tsv:6: longer than" in errors[3]  # a 200 kB line for 8-wide features is refused unread


def test_mmf_npy_with_info_and_a_pickle_that_would_run_code(tmp_path):
    feats = np.arange(3 * D, dtype=np.float32).reshape(3, D)
    np.save(tmp_path / "a.npy", feats)
    info = {"bbox": np.array([[0, 0, 10, 10], [5, 5, 20, 30], [0, 0, 40, 50]], dtype=np.float32),
            "image_width": 40, "image_height": 50, "num_boxes": 3, "cls_prob": np.full((3, 4), 0.25, np.float32)}
    np.save(tmp_path / "a_info.npy", np.array(info, dtype=object), allow_pickle=True)
    r = read_mmf(tmp_path / "a.npy")
    assert (r.image_w, r.image_h, len(r)) == (40, 50, 3) and r.class_probs.shape == (3, 4)

    class Evil:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))

    np.save(tmp_path / "b.npy", feats)
    (tmp_path / "b_info.npy").write_bytes(b"")  # build an object .npy whose payload is the evil pickle
    with open(tmp_path / "b_info.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(Evil(), f)
    with pytest.raises(RegionReadError, match=r"b.npy \(\+ b_info.npy\): UnpicklingError: refusing to load builtins.exec"):
        read_mmf(tmp_path / "b.npy")
    assert not (tmp_path / "PWNED").exists() and not (tmp_path.cwd() / "PWNED").exists()
    regions, errors = read_folder(tmp_path)
    assert sorted(regions) == ["a"] and len(errors) == 1 and "b_info.npy" in errors[0]


def test_npz_and_batching_with_locations(tmp_path):
    np.savez(tmp_path / "x.npz", boxes=np.array([[0, 0, 50, 25], [10, 5, 30, 25]], np.float32),
             features=np.ones((2, D), np.float32), image_w=100, image_h=50)
    x = read_npz(tmp_path / "x.npz")
    y = Regions(torch.tensor([[0.0, 0.0, 100.0, 50.0]]), torch.zeros(1, D), 100, 50)
    batch = RegionFeatures.collate([x, y])
    assert batch.features.shape == (2, 2, D) and batch.mask.tolist() == [[1, 1], [1, 0]]
    loc = batch.locations()
    torch.testing.assert_close(loc[0, 0], torch.tensor([0.0, 0.0, 0.5, 0.5, 0.25]))
    torch.testing.assert_close(loc[1, 0], torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]))
    assert loc[1, 1].abs().sum() == 0  # padding
    (tmp_path / "bad.npz").write_bytes(b"PK not a zip")
    with pytest.raises(RegionReadError, match="bad.npz"):
        read_npz(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match=r"features must be \[R=2, D\], got \(3, 8\)"):
        Regions(torch.zeros(2, 4), torch.zeros(3, D), 10, 10)
    with pytest.raises(ValueError, match=r"different widths \[4, 8\]"):
        RegionFeatures.collate([x, Regions(torch.zeros(1, 4), torch.zeros(1, 4), 10, 10)])
