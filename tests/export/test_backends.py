"""The Embedder's backends: the same embeddings from ONNX Runtime and OpenVINO as from PyTorch, the
export made once and cached by the weights hash, clear errors for what a backend cannot do, and
the CLI's --backend."""

import numpy as np
import pytest
import torch
from PIL import Image

import polymodal
from polymodal.modalities.text import load_tokenizer
from polymodal.tasks.embedder import Embedder

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, minilm_dir):
    """A saved clip-minilm-tiny (BERT text tower) with its tokenizer."""
    folder = tmp_path_factory.mktemp("backend") / "model"
    torch.manual_seed(0)
    polymodal.save(polymodal.create("clip-minilm-tiny"), folder)
    load_tokenizer(minilm_dir).save(folder)
    return folder


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One export cache for the tests that only use exports (each export costs seconds)."""
    folder = tmp_path_factory.mktemp("shared-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POLYMODAL_CACHE", str(folder))
        yield folder


TEXTS = ["a red circle", "two blue squares above a green star on a sunny beach", "night"]


def _images():
    return [Image.new("RGB", (50, 40), (200, 30 * i, 10)) for i in range(3)]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.slow
def test_a_backend_gives_the_torch_embeddings_and_exports_once(backend, model_dir, shared_cache, monkeypatch):
    # The module's shared cache: the other tests of a backend reuse this export instead of making their own.
    if backend == "openvino":
        pytest.importorskip("openvino")
    reference = Embedder.from_checkpoint(model_dir)
    fast = Embedder.from_checkpoint(model_dir, backend=backend)
    assert fast.runtime is not None and set(fast.runtime.modalities) == {"image", "text"}
    torch.testing.assert_close(fast.embed_texts(TEXTS), reference.embed_texts(TEXTS), atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.embed_images(_images()), reference.embed_images(_images()), atol=1e-5, rtol=0)
    fmt = "onnx" if backend == "onnxruntime" else "openvino"
    exports = [e for e in (shared_cache / "exports").iterdir() if f"-{fmt}-" in e.name]
    assert len(exports) == 1 and exports[0].name.startswith(reference.model_id)

    def no_export(*a, **k):
        raise AssertionError("exported again")
    monkeypatch.setattr("polymodal.export.onnx.export_onnx", no_export)
    monkeypatch.setattr("polymodal.export.openvino.export_openvino", no_export)
    again = Embedder.from_checkpoint(model_dir, backend=backend)  # from the cache
    torch.testing.assert_close(again.embed_texts(TEXTS[:1]), reference.embed_texts(TEXTS[:1]), atol=1e-5, rtol=0)


@pytest.mark.slow
def test_openvino_runs_bf16_when_asked(model_dir, shared_cache):
    pytest.importorskip("openvino")
    reference = Embedder.from_checkpoint(model_dir)
    bf16 = Embedder.from_checkpoint(model_dir, torch.bfloat16, backend="openvino")
    assert bf16.runtime.precision == "bf16" and bf16.dtype == torch.float32  # the torch copy stays fp32
    cos = (bf16.embed_texts(TEXTS) * reference.embed_texts(TEXTS)).sum(-1)
    assert cos.min() > 0.99


def test_what_a_backend_cannot_do_is_a_clear_error(model_dir, shared_cache):
    with pytest.raises(ValueError, match="backend 'tensorrt' is not one of"):
        Embedder.from_checkpoint(model_dir, backend="tensorrt")
    with pytest.raises(ValueError, match="onnxruntime backend runs fp32"):
        Embedder.from_checkpoint(model_dir, torch.bfloat16, backend="onnxruntime")
    with pytest.raises(ValueError, match="runs on the CPU"):
        Embedder.from_checkpoint(model_dir, device="meta", backend="onnxruntime")


@pytest.mark.slow
def test_embed_on_the_command_line_with_the_onnxruntime_backend(model_dir, shared_cache, tmp_path):
    from typer.testing import CliRunner

    from polymodal.cli import app

    texts = tmp_path / "t.txt"
    texts.write_text("\n".join(TEXTS))
    outs = {}
    for backend in ("torch", "onnxruntime"):
        result = CliRunner().invoke(app, ["embed", str(texts), "--checkpoint", str(model_dir), "--out",
                                          str(tmp_path / backend), "--backend", backend])
        assert result.exit_code == 0, result.output
        outs[backend] = np.load(tmp_path / backend / "embeddings.npy")
    np.testing.assert_allclose(outs["onnxruntime"], outs["torch"], atol=1e-5)
