"""The per-machine choice of the CPU linear path: measured once, cached, applied; outputs stay within
1e-4 of the plain path."""

import json

import pytest
import torch

import polymodal
from polymodal.layers import cpu_path
from polymodal.layers.packed_linear import PackedLinear, available

pytestmark = pytest.mark.skipif(not available(), reason="this torch build has no oneDNN packed linears")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_CACHE", str(tmp_path))
    return tmp_path / cpu_path.CACHE_FILE


def _model():
    torch.manual_seed(0)
    return polymodal.create("clip-tiny").eval()


@pytest.mark.parametrize("packed_seconds, expected", [(0.5, "packed"), (0.99, "plain")])
def test_the_faster_path_is_taken_by_a_margin_and_remembered(cache, monkeypatch, packed_seconds, expected):
    monkeypatch.setattr(cpu_path, "measure", lambda *a, **k: {"plain": 1.0, "packed": packed_seconds})
    model = _model()
    assert cpu_path.choose(model) == expected
    assert any(isinstance(m, PackedLinear) for m in model.modules()) == (expected == "packed")
    (key, entry), = json.loads(cache.read_text()).items()
    assert entry["path"] == expected and cpu_path.cpu_name() in key and "64x192" in key

    def measured_again(*a, **k):
        raise AssertionError("measured again")
    monkeypatch.setattr(cpu_path, "measure", measured_again)
    assert cpu_path.choose(_model()) == expected  # from the cache


def test_a_real_measurement_picks_a_path_and_the_outputs_stay_within_1e_4(cache):
    reference, model = _model(), _model()
    chosen = cpu_path.choose(model)
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert chosen == entry["path"] and set(entry["seconds"]) == {"plain", "packed"}
    assert all(v > 0 for v in entry["seconds"].values())
    x, ids = torch.randn(3, 3, 32, 32), torch.randint(1, 999, (3, 16))
    with torch.inference_mode():
        torch.testing.assert_close(model.encode_image(x), reference.encode_image(x), atol=1e-4, rtol=0)
        torch.testing.assert_close(model.encode_text(ids), reference.encode_text(ids), atol=1e-4, rtol=0)


def test_the_embedder_takes_the_path_it_is_told_and_refuses_unknown_ones(tmp_path, cache):
    from polymodal.tasks.embedder import Embedder

    polymodal.save(_model(), tmp_path / "m")
    packed = Embedder.from_checkpoint(tmp_path / "m", cpu_path="packed")
    plain = Embedder.from_checkpoint(tmp_path / "m", cpu_path="plain")
    assert packed.cpu_path == "packed" and plain.cpu_path == "plain"
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(packed.embed("image", x), plain.embed("image", x), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="cpu_path 'fast'"):
        Embedder.from_checkpoint(tmp_path / "m", cpu_path="fast")
