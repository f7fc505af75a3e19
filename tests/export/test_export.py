"""Exports users can take elsewhere: ONNX and OpenVINO towers verified against the model, a HF
``CLIPModel`` folder that transformers loads, open_clip's layout, and the Embedder's backends."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import polymodal
from polymodal.export.clip_layouts import check_exportable, hf_state_dict, openai_state_dict, save_hf_clip
from polymodal.export.folder import export_model
from polymodal.export.onnx import ExportError, export_onnx, probe_inputs, towers, verify_onnx

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def clip_dir(fixtures):
    return fixtures / "clip_openai"


@pytest.fixture(scope="module")
def clip_onnx(clip_dir, tmp_path_factory):
    """clip_openai exported to ONNX once (each export costs seconds): (folder, manifest)."""
    folder = tmp_path_factory.mktemp("clip-onnx")
    return folder, export_onnx(polymodal.load(clip_dir).eval(), folder)


@pytest.mark.slow
def test_every_tower_exports_to_onnx_with_dynamic_batch_and_length_and_matches_the_model(clip_onnx, clip_dir):
    model = polymodal.load(clip_dir).eval()
    tmp_path, manifest = clip_onnx
    assert set(manifest["towers"]) == {"image", "text"}
    assert all(t["max_abs_diff"] <= 1e-4 for t in manifest["towers"].values())
    assert json.loads((tmp_path / "export.json").read_text()) == manifest
    # a batch and a length the export never saw, one row padded
    ids = torch.randint(1, 998, (5, 9))
    ids[:, -1] = 999
    ids[4, 5], ids[4, 6:] = 999, 0
    mask = (torch.arange(9) < 6).long().expand(5, 9).clone()
    mask[:4] = 1
    session = ort.InferenceSession(str(tmp_path / "text.onnx"))
    got = session.run(None, {"ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    np.testing.assert_allclose(got, model.embed("text", ids, mask).detach().numpy(), atol=1e-5)
    pixels = torch.randn(7, 3, 32, 32)
    got = ort.InferenceSession(str(tmp_path / "image.onnx")).run(None, {"input": pixels.numpy()})[0]
    np.testing.assert_allclose(got, model.embed("image", pixels).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("name, expected", [("imagebind-tiny", {"image", "text", "audio", "depth", "thermal", "imu"}),
                                            ("videoclip-tiny", {"text", "video"})])
@pytest.mark.slow
def test_imagebind_and_videoclip_export_every_tower(tmp_path, name, expected):
    from polymodal.export.runtime import ExportedTowers

    torch.manual_seed(0)
    model = polymodal.create(name).eval()
    manifest = export_onnx(model, tmp_path)
    assert set(manifest["towers"]) == expected
    assert max(t["max_abs_diff"] for t in manifest["towers"].values()) <= 1e-4
    if name == "imagebind-tiny":  # a clip axis is averaged as the model does; other ranks are refused
        towers = ExportedTowers(tmp_path, "onnxruntime")
        size = model.config.map_size
        clips = torch.randn(2, 3, 1, size, size)  # 2 samples × 3 depth clips
        with torch.no_grad():
            torch.testing.assert_close(towers.embed("depth", clips), model.embed("depth", clips), atol=1e-5, rtol=0)
        video = torch.randn(2, 3, 3, 2, model.config.image_size, model.config.image_size)  # the torch tower's own
        assert towers.takes("depth", clips) and not towers.takes("image", video)
        with pytest.raises(ValueError, match="the exported image tower takes inputs of 4 dimensions"):
            towers.embed("image", video)
    if name == "videoclip-tiny":  # per-second features [B, V, D] with their mask: V is dynamic
        assert manifest["towers"]["video"]["inputs"] == ["features", "attention_mask"]
        assert manifest["towers"]["video"]["longest"] == polymodal.preset(name).max_video_len


@pytest.mark.slow
def test_an_export_that_does_not_reproduce_the_model_is_an_error_and_is_not_kept(tmp_path, clip_dir, clip_onnx):
    shutil.copy(clip_onnx[0] / "image.onnx", tmp_path / "image.onnx")  # the export of the unchanged model
    other = polymodal.load(clip_dir).eval()
    with torch.no_grad():
        other.visual.proj.weight.mul_(1.01)  # a model the file was not made from
    tower = next(t for t in towers(other) if t.modality == "image")
    with pytest.raises(ExportError, match=r"image.onnx: the exported image tower differs from the model by"):
        verify_onnx(other, tmp_path / "image.onnx", tower, 1e-4)
    assert not (tmp_path / "image.onnx").exists()


def test_probe_inputs_differ_from_the_traced_ones_and_pad_like_a_tokenizer(clip_dir):
    text = next(t for t in towers(polymodal.load(clip_dir)) if t.modality == "text")
    ids, mask = probe_inputs(text)
    assert ids.shape[0] == 3 != text.args[0].shape[0] and ids.shape[1] != text.args[0].shape[1]
    cut = int(mask[-1].sum())
    assert mask[:2].all() and cut < ids.shape[1] and ids[-1, cut - 1] == text.args[0][0, -1] and (ids[-1, cut:] == 0).all()


@pytest.mark.slow
def test_openvino_export_matches_the_model(tmp_path, clip_dir):
    pytest.importorskip("openvino")
    report = export_model(clip_dir, "openvino", tmp_path / "ov")
    assert set(report) == {"image", "text"} and max(report.values()) <= 1e-4
    assert {p.name for p in (tmp_path / "ov").iterdir()} >= {"image.xml", "image.bin", "text.xml", "text.bin",
                                                               "export.json", "config.json", "processor_config.json"}


def test_the_open_clip_layout_is_exactly_open_clips_own_tensors(clip_dir):
    """The fixture was written by open_clip itself: reading it and writing it back gives the same
    keys, shapes and values."""
    model = polymodal.load(clip_dir)
    original = load_file(str(clip_dir / "weights.safetensors"))
    written = openai_state_dict(model)
    assert set(written) == set(original)
    assert all(torch.equal(written[k], original[k]) for k in original)


def test_the_hf_layout_is_exactly_transformers_own_tensors(fixtures):
    model = polymodal.load(fixtures / "clip_hf")
    original = load_file(str(fixtures / "clip_hf" / "weights.safetensors"))
    written = hf_state_dict(model)
    assert set(written) == set(original) and all(torch.equal(written[k], original[k]) for k in original)


def test_transformers_loads_the_hf_export_and_gives_the_same_embeddings(tmp_path, clip_dir):
    transformers = pytest.importorskip("transformers")
    model = polymodal.load(clip_dir).eval()
    save_hf_clip(model, tmp_path, processor=polymodal.modalities.processor.processor_for(model, clip_dir))
    hf = transformers.CLIPModel.from_pretrained(tmp_path).eval()
    pixels = torch.randn(3, 3, 32, 32)
    ids = torch.randint(1, 998, (3, 16))
    ids[:, -1] = 999
    with torch.no_grad():
        image, text = hf.get_image_features(pixel_values=pixels), hf.get_text_features(input_ids=ids)
        image = image if torch.is_tensor(image) else image.pooler_output
        text = text if torch.is_tensor(text) else text.pooler_output
        torch.testing.assert_close(image, model.encode_image(pixels), atol=1e-5, rtol=0)
        torch.testing.assert_close(text, model.encode_text(ids), atol=1e-5, rtol=0)
        torch.testing.assert_close(hf.logit_scale, model.logit_scale)
    processor = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert processor["crop_size"] == {"height": 32, "width": 32} and len(processor["image_mean"]) == 3


def test_layouts_that_cannot_hold_a_model_say_why(tmp_path):
    with pytest.raises(ExportError, match="image stem 'conv'"):
        check_exportable(polymodal.create("clip-world-tiny"))
    with pytest.raises(ExportError, match="not a CLIP"):
        check_exportable(polymodal.create("imagebind-tiny"))
    with pytest.raises(ValueError, match="--format 'tflite' is not one of"):
        export_model(tmp_path, "tflite", tmp_path / "x")


@pytest.mark.slow
def test_the_export_command_verifies_prints_and_carries_what_the_folder_needs(tmp_path, minilm_dir):
    from typer.testing import CliRunner

    from polymodal.cli import app
    from polymodal.modalities.text import load_tokenizer

    torch.manual_seed(0)
    polymodal.save(polymodal.create("clip-minilm-tiny"), tmp_path / "m")
    load_tokenizer(minilm_dir).save(tmp_path / "m")
    result = CliRunner().invoke(app, ["export", str(tmp_path / "m"), "--format", "onnx", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    lines = " ".join(result.output.split())
    assert "image max |Δ| vs the model" in lines and "text max |Δ| vs the model" in lines
    assert {p.name for p in (tmp_path / "o").iterdir()} >= {"image.onnx", "text.onnx", "export.json", "config.json",
                                                              "processor_config.json", "tokenizer.json"}
    loaded = load_tokenizer(tmp_path / "o")  # the tokenizer travelled and works
    assert loaded(["a red circle"]).ids.shape[0] == 1
    bad = CliRunner().invoke(app, ["export", str(tmp_path / "m"), "--format", "hf", "--out", str(tmp_path / "h")])
    assert bad.exit_code != 0 and "BertConfig text tower" in " ".join(bad.output.split())
