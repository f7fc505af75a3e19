"""LayoutLMv2 and v3: the Hugging Face layouts load and reproduce every stored output of
tests/fixtures/layoutlmv2 (backbone stubbed there: the p2 map is the input) and layoutlmv3,
debug tensors included; bad boxes and sizes are refused by name."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import polymodal
from polymodal.models.layoutlmv2 import LayoutLMv2
from polymodal.models.layoutlmv3 import LayoutLMv3
from polymodal.weights import CheckpointError
from polymodal.weights.hf_layoutlm import convert_v2


def _close(ours: dict, expected: dict) -> None:
    assert sorted(ours) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(ours[key], value, rtol=1e-4, atol=1e-5, msg=lambda m, k=key: f"{k}: {m}")


def _inputs(folder):
    return ({k: v.clone() for k, v in load_file(folder / "inputs.safetensors").items()},
            load_file(folder / "outputs.safetensors"))


def test_layoutlmv3_fixture_parity(fixtures):
    model = polymodal.load(fixtures / "layoutlmv3")
    assert isinstance(model, LayoutLMv3) and model.config.image_size == 32 and model.config.bert.pad_token_id == 1
    i, expected = _inputs(fixtures / "layoutlmv3")
    with torch.no_grad():
        full = model(i["input_ids"], i["bbox"], i["pixel_values"], i["attention_mask"])
        text_only = model(i["input_ids"], i["bbox"], None, i["attention_mask"])
        text = model.text_embeddings(i["input_ids"], i["bbox"])
        visual = model.visual_embeddings(i["pixel_values"])
        joint = model.joint_norm(torch.cat([text, visual], dim=1))
        slow = model(i["input_ids"], i["bbox"], i["pixel_values"], i["attention_mask"], need_weights=True)
    _close({"last_hidden_state": full["hidden"], "last_hidden_state_text_only": text_only["hidden"],
            "debug_text_embeddings": text, "debug_visual_embeddings": visual, "debug_embedding_output": joint}, expected)
    # The explicit-softmax path gives the same states; padded words get no attention.
    torch.testing.assert_close(slow["hidden"], expected["last_hidden_state"], rtol=1e-4, atol=1e-5)
    assert slow["attentions"][-1][1, :, :, 7:10].abs().max() == 0


def test_layoutlmv2_fixture_parity_with_the_p2_map_as_input(fixtures):
    # The fixture has no backbone weights: only visual.backbone.* may be missing.
    with pytest.warns(UserWarning, match="missing keys: visual.backbone.") as caught:
        model = polymodal.load(fixtures / "layoutlmv2", config="layoutlmv2-tiny", strict=False)
    assert isinstance(model, LayoutLMv2)
    assert "unexpected" not in str(caught[0].message)
    converted = convert_v2(load_file(fixtures / "layoutlmv2" / "weights.safetensors"))
    missing = set(model.state_dict()) - set(converted)
    assert missing and all(k.startswith("visual.backbone.") for k in missing)
    i, expected = _inputs(fixtures / "layoutlmv2")
    p2 = i["image_features_p2"]
    with torch.no_grad():
        out = model(i["input_ids"], i["bbox"], None, i["attention_mask"], i["token_type_ids"], feature_map=p2)
        text = model.text_embeddings(i["input_ids"], i["bbox"], i["token_type_ids"])
        embedded = torch.cat([text, model.visual_embeddings(feature_map=p2)], dim=1)
    _close({"last_hidden_state": out["hidden"], "pooler_output": out["pooled"],
            "debug_pooled_visual_features": model.visual.pool_map(p2), "debug_embedding_output": embedded}, expected)
    # The fast-QKV key bias is zero: the loaded fused projection is the reference's.
    qkv_bias = model.transformer.blocks[0].attn.qkv.bias
    assert qkv_bias[64:128].abs().max() == 0 and qkv_bias[:64].abs().max() > 0


def _hf_v2_checkpoint(fixtures, tmp_path, **replace):
    """The fixture plus the tiny backbone's tensors as a real (SyncBN-converted) checkpoint stores them."""
    sd = {f"layoutlmv2.{k}": v for k, v in load_file(fixtures / "layoutlmv2" / "weights.safetensors").items()}
    backbone = polymodal.create("layoutlmv2-tiny").visual.backbone.state_dict()
    torch.manual_seed(0)
    for k, v in backbone.items():
        sd[f"layoutlmv2.visual.backbone.{k}"] = v + 0.1 * torch.rand_like(v)  # running_var stays positive
        if k.endswith("norm.running_var"):
            sd[f"layoutlmv2.visual.backbone.{k.removesuffix('running_var')}num_batches_tracked"] = torch.tensor(7)
    sd["layoutlmv2.visual.pixel_mean"] = torch.tensor([103.53, 116.28, 123.675]).view(3, 1, 1)
    sd["layoutlmv2.visual.pixel_std"] = torch.tensor([57.375, 57.12, 58.395]).view(3, 1, 1)
    sd.update(replace)
    (tmp_path / "ckpt").mkdir()
    save_file(sd, tmp_path / "ckpt" / "model.safetensors")
    hf_config = json.loads((fixtures / "layoutlmv2" / "config.json").read_text())["hf_config"]
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(hf_config))  # as a HF folder has it
    return tmp_path / "ckpt", backbone


def test_a_real_layoutlmv2_checkpoint_with_backbone_loads_strictly(fixtures, tmp_path):
    folder, _ = _hf_v2_checkpoint(fixtures, tmp_path)
    model = polymodal.load(folder)  # strict: every tensor has a home, the geometry is read off the tensors
    c = model.config.backbone
    assert (c.depths, c.groups, c.width_per_group, c.stem_channels, c.fpn_channels) == ((1, 1, 1, 1), 4, 4, 16, 32)
    sd = load_file(folder / "model.safetensors")
    torch.testing.assert_close(model.visual.backbone.bottom_up.res3[0].conv2.weight,
                               sd["layoutlmv2.visual.backbone.bottom_up.res3.0.conv2.weight"])
    i, _ = _inputs(fixtures / "layoutlmv2")
    image = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        out = model(i["input_ids"], i["bbox"], image, i["attention_mask"], i["token_type_ids"])
    assert out["hidden"].shape == (2, 10 + 16, 64) and torch.isfinite(out["hidden"]).all()
    info = polymodal.weights.describe(folder)
    assert info["layout"] == "hf-layoutlmv2" and info["family"] == "layoutlmv2" and info["supported"]


def test_a_checkpoint_with_other_pixel_statistics_is_refused(fixtures, tmp_path):
    folder, _ = _hf_v2_checkpoint(fixtures, tmp_path, **{"layoutlmv2.visual.pixel_mean": torch.zeros(3, 1, 1)})
    with pytest.raises(CheckpointError, match=r"visual.pixel_mean is \[0.0, 0.0, 0.0\]"):
        polymodal.load(folder)


def test_bad_boxes_and_lengths_are_named(fixtures):
    model = polymodal.load(fixtures / "layoutlmv3")
    i, _ = _inputs(fixtures / "layoutlmv3")
    with pytest.raises(ValueError, match=r"bbox has coordinates in \[0, 1200\]"):
        model(i["input_ids"], i["bbox"].clamp(max=1200) + (i["bbox"] == 1000) * 200)
    with pytest.raises(ValueError, match=r"bbox must be \[B, 10, 4\]"):
        model(i["input_ids"], i["bbox"][:, :9])
    with pytest.raises(ValueError, match=r"expected page pixels \[B, 3, 32, 32\], got \(2, 3, 64, 64\)"):
        model(i["input_ids"], i["bbox"], torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="split the page into windows"):
        model(torch.ones(1, 39, dtype=torch.long), torch.zeros(1, 39, 4, dtype=torch.long))
    v2 = polymodal.create("layoutlmv2-tiny")
    with pytest.raises(ValueError, match="needs the page image"):
        v2(i["input_ids"], i["bbox"])


@pytest.mark.parametrize("name", ["layoutlmv2-tiny", "layoutlmv3-tiny"])
def test_without_layout_the_model_ignores_boxes_and_with_it_does_not(name):
    config = polymodal.registry.preset(name)
    inputs = polymodal.registry.example_inputs(config)
    moved = dict(inputs, boxes=(inputs["boxes"] + 300).clamp(max=1000))
    torch.manual_seed(0)
    with_layout = polymodal.registry.build(config).eval()
    config.layout.box_embeddings = config.layout.relative_2d = False
    torch.manual_seed(0)
    text_only = polymodal.registry.build(config).eval()
    with torch.no_grad():
        assert (with_layout(**inputs)["text_hidden"] - with_layout(**moved)["text_hidden"]).abs().max() > 1e-3
        torch.testing.assert_close(text_only(**inputs)["text_hidden"], text_only(**moved)["text_hidden"])
