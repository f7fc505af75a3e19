"""ImageBind: the official layout loads strictly and reproduces the reference's golden outputs
for all six modalities (tests/fixtures/imagebind)."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import polymodal
from polymodal.models.imagebind import ImageBind
from polymodal.weights import CheckpointError, detect_layout

MODALITIES = ["image", "text", "audio", "depth", "thermal", "imu"]


def _ours(tensors: dict) -> dict:
    """The fixture's official modality names → ours (its "vision" is our "image", as everywhere in polymodal)."""
    return {k.replace("vision", "image"): v for k, v in tensors.items()}


@pytest.fixture(scope="module")
def reference(fixtures):
    folder = fixtures / "imagebind"
    model = polymodal.load(folder / "weights.safetensors")
    return model, _ours(load_file(folder / "inputs.safetensors")), _ours(load_file(folder / "outputs.safetensors"))


def test_official_layout_is_detected_and_sized_from_the_tensors(fixtures):
    sd = load_file(fixtures / "imagebind" / "weights.safetensors")
    assert detect_layout(sd) == "imagebind"
    model = polymodal.load(fixtures / "imagebind" / "weights.safetensors")
    c = model.config
    assert isinstance(model, ImageBind) and model.modalities == tuple(MODALITIES)
    assert (c.embed_dim, c.image.width, c.image.layers, c.text.vocab_size, c.depth.layers) == (16, 24, 2, 128, 1)
    assert (c.image_size, c.image_patch, c.video_frames, c.imu_length, c.imu_patch) == (224, 14, 2, 2000, 8)
    assert c.scales == pytest.approx({"audio": 20.0, "depth": 5.0, "thermal": 10.0, "imu": 5.0})
    assert not model.training


@pytest.mark.parametrize("modality", MODALITIES)
def test_golden_outputs_per_modality(reference, modality):
    model, inputs, outputs = reference
    with torch.no_grad():
        got = model.encode(modality, inputs[modality])
        x = inputs[modality]
        head = model.encode(modality, x.flatten(0, 1) if modality == "audio" else x, postprocess=False)
    torch.testing.assert_close(got, outputs[modality], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(head, outputs[f"debug_{modality}_head_output"], rtol=1e-4, atol=1e-5)


def test_trunk_outputs_at_token_0_match_the_debug_tensors(reference):
    """``debug_<m>_trunk_output_token0``: each encoder's block stack output, before the head's norm."""
    model, inputs, outputs = reference
    trunk = {}
    hooks = [model.encoders[m].transformer.register_forward_hook(
        lambda mod, args, out, m=m: trunk.__setitem__(m, out[0][:, 0])) for m in MODALITIES]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in hooks:
            h.remove()
    for m in MODALITIES:
        torch.testing.assert_close(trunk[m], outputs[f"debug_{m}_trunk_output_token0"], rtol=1e-4, atol=1e-5)
    assert {k for k in outputs if k.startswith("debug_")} == {f"debug_{m}_{what}" for m in MODALITIES
                                                             for what in ("head_output", "trunk_output_token0")}


def test_forward_on_all_modalities_equals_each_alone(reference):
    model, inputs, outputs = reference
    with torch.no_grad():
        together = model(inputs)
    for m in MODALITIES:
        torch.testing.assert_close(together[m], outputs[m], rtol=1e-4, atol=1e-5)
    norms = {m: together[m].norm(dim=-1) for m in MODALITIES}
    assert norms["image"] == pytest.approx(1.0) and norms["depth"].tolist() == pytest.approx([5.0])
    assert norms["text"].tolist() == pytest.approx([1 / 0.07] * 2, rel=1e-4)


def test_clip_axis_is_averaged_without_renormalising(reference):
    model, inputs, _ = reference
    clips = inputs["audio"]  # [1, 2, 1, 128, 204]
    with torch.no_grad():
        each = model.encode("audio", clips[0])
        mean = model.encode("audio", clips)
        video = torch.randn(1, 2, 3, 2, 224, 224)
        v = model.encode("image", video)
        v_each = model.encode("image", video[0])
    torch.testing.assert_close(mean[0], each.mean(0))  # the mean of the scaled clips, not renormalised
    assert (each.norm(dim=-1) - 20.0).abs().max() < 1e-4 and (mean.norm() - 20.0).abs() > 1e-3
    torch.testing.assert_close(v[0], v_each.mean(0))


def test_train_mode_drop_path_changes_outputs(reference):
    model, inputs, outputs = reference
    torch.manual_seed(0)
    model.train()
    try:
        with torch.no_grad():
            out = model.encode("imu", inputs["imu"])
    finally:
        model.eval()
    assert (out - outputs["imu"]).abs().max() > 1e-2


def test_image_equals_its_two_frame_repeat(reference):
    model, inputs, _ = reference
    image = inputs["image"]
    clip = image.unsqueeze(2).repeat(1, 1, 2, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model.encode("image", image), model.encode("image", clip))


def test_wrong_shapes_and_missing_modalities_are_named(reference):
    model, inputs, _ = reference
    with pytest.raises(ValueError, match=r"expected IMU \[B, 6, T\] with T a multiple of 8, got \(1, 5, 2000\)"):
        model.encode("imu", torch.zeros(1, 5, 2000))
    with pytest.raises(ValueError, match="makes 1 tokens; this encoder was built for 196"):
        model.encode("depth", torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"expected filterbank clips \[B, 1, mel, frames\]"):
        model.encode("audio", torch.zeros(1, 3, 128, 204))
    small = polymodal.create("imagebind-tiny")
    del small  # the preset builds; a model without a modality names what it has:
    partial = ImageBind({"image": model.encoders["image"]}, {"image": model.postprocessors["image"]})
    with pytest.raises(KeyError, match="no 'audio' encoder; it has: image"):
        partial.encode("audio", inputs["audio"])


def test_mismatched_official_checkpoint_names_the_key(fixtures, tmp_path):
    sd = load_file(fixtures / "imagebind" / "weights.safetensors")
    sd["modality_trunks.audio.blocks.0.attn.bias_k"] = torch.zeros(1, 1, 17)
    save_file(sd, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match=r"encoders.audio.transformer.blocks.0.attn.bias_k: checkpoint "
                                              r"\(1, 1, 17\) vs model \(1, 1, 16\)"):
        polymodal.create("imagebind-tiny", weights=tmp_path / "bad.safetensors")
    sd = load_file(fixtures / "imagebind" / "weights.safetensors")
    sd["modality_preprocessors.text.mask"] = torch.zeros(77, 77)
    save_file(sd, tmp_path / "nomask.safetensors")
    with pytest.raises(CheckpointError, match="not the causal mask"):
        polymodal.create("imagebind-tiny", weights=tmp_path / "nomask.safetensors")


def test_preset_matches_fixture_and_roundtrips_our_format(reference, fixtures, tmp_path):
    model, inputs, outputs = reference
    same = polymodal.create("imagebind-tiny", weights=fixtures / "imagebind" / "weights.safetensors")
    polymodal.save(same, tmp_path / "ib")
    meta = json.loads((tmp_path / "ib" / "config.json").read_text())
    assert meta["family"] == "imagebind"
    again = polymodal.load(tmp_path / "ib")
    with torch.no_grad():
        torch.testing.assert_close(again(inputs)["audio"], outputs["audio"], rtol=1e-4, atol=1e-5)


def test_huge_preset_has_the_official_sizes():
    with torch.device("meta"):
        model = polymodal.registry.build(polymodal.registry.preset("imagebind-huge"))
    c = model.config
    assert model.encoders["image"].num_tokens == 256 and model.encoders["audio"].num_tokens == 228
    assert model.encoders["imu"].num_tokens == 250 and model.encoders["depth"].num_tokens == 196
    blocks = {m: len(model.encoders[m].transformer.blocks) for m in MODALITIES}
    assert blocks == {"image": 32, "text": 24, "audio": 12, "depth": 12, "thermal": 12, "imu": 6}
    assert c.embed_dim == 1024 and model.encoders["text"].stem.weight.shape == (49408, 1024)


def test_info_describes_an_imagebind_checkpoint(fixtures):
    from polymodal.weights import describe

    d = describe(fixtures / "imagebind" / "weights.safetensors")
    assert (d["layout"], d["family"], d["tensors"]) == ("imagebind", "imagebind", 183)
    assert d["config"]["audio"] == {"kind": "imagebind-tower", "width": 16, "layers": 2, "heads": 2, "drop_path": 0.1}
