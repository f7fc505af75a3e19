"""The golden outputs of open_clip and transformers (tests/fixtures) reproduced by our loaders."""

import json

import pytest
import torch
from safetensors.torch import load_file

import polymodal
from polymodal.weights import detect_layout, read_state_dict


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", ["", "_quickgelu"])
def test_open_clip_fixture(fixtures, variant):
    folder = fixtures / "clip_openai"
    cfg = json.loads((folder / f"config{variant}.json").read_text())
    model = polymodal.load(folder / "weights.safetensors", config=cfg)
    assert model.config.vision.act == ("quick_gelu" if variant else "gelu")
    assert model.config.vision.heads == 2 and model.config.text.heads == 2
    inputs = load_file(folder / "inputs.safetensors")
    expected = load_file(folder / f"outputs{variant}.safetensors")
    with torch.no_grad():
        _close(model.encode_image(inputs["images"]), expected["image_features"])
        _close(model.encode_text(inputs["text"]), expected["text_features"])
        _close(model.encode_image(inputs["images"], normalize=True), expected["image_features_normalized"])
        _close(model.encode_text(inputs["text"], normalize=True), expected["text_features_normalized"])
        per_image, per_text = model.logits(inputs["images"], inputs["text"])
        _close(per_image, expected["logits_per_image"])
        _close(per_text, expected["logits_per_text"])
        tokens = model.visual.forward_features(inputs["images"])
        # ln_post is our final norm; the fixture stores the tokens before it.
        pre_norm_tokens = model.visual.transformer(
            model.visual.norm_pre(torch.cat([model.visual.cls_token.expand(4, -1, -1),
                                             model.visual.stem(inputs["images"])], 1)
                                  + model.visual.pos_embed))[0]
        _close(pre_norm_tokens, expected["debug_vision_tokens_after_transformer"])
        _close(tokens, model.visual.norm(pre_norm_tokens))
        _close(model.text.forward_features(inputs["text"]), expected["debug_text_tokens_after_ln_final"])


def test_hf_clip_fixture(fixtures):
    folder = fixtures / "clip_hf"
    assert detect_layout(read_state_dict(folder)) == "hf-clip"
    model = polymodal.load(folder)  # architecture from the HF config in config.json
    assert model.config.text.eot_token_id == 999
    inputs = load_file(folder / "inputs.safetensors")
    expected = load_file(folder / "outputs.safetensors")
    with torch.no_grad():
        _close(model.encode_image(inputs["pixel_values"]), expected["image_features"])
        _close(model.encode_text(inputs["input_ids"], inputs["attention_mask"]), expected["text_features"])
        _close(model.encode_image(inputs["pixel_values"], normalize=True), expected["image_embeds"])
        _close(model.encode_text(inputs["input_ids"], normalize=True), expected["text_embeds"])
        per_image, _ = model.logits(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])
        _close(per_image, expected["logits_per_image"])
        # With the padding mask, every position (padding too) matches HF's last_hidden_state.
        _close(model.text.forward_features(inputs["input_ids"], inputs["attention_mask"]),
               expected["debug_text_last_hidden_state"])


def test_openai_layout_without_config_uses_openai_rules(fixtures):
    """No config: 64-wide heads and QuickGELU, as OpenAI's build_model assumes."""
    model = polymodal.load(fixtures / "clip_openai" / "weights.safetensors", config={})
    assert model.config.vision.heads == 1 and model.config.vision.act == "quick_gelu"
    assert model.config.vision.image_size == 32 and model.config.text.context_length == 16


def test_bf16_inference_keeps_the_features(fixtures):
    """The bf16 path (weights and activations in bfloat16) stays close to fp32 on the fixture."""
    import copy

    folder = fixtures / "clip_openai"
    model = polymodal.load(folder / "weights.safetensors", config=json.loads((folder / "config.json").read_text()))
    half = copy.deepcopy(model).to(torch.bfloat16)
    inputs = load_file(folder / "inputs.safetensors")
    with torch.no_grad():
        cos_img = torch.cosine_similarity(half.encode_image(inputs["images"].bfloat16()).float(),
                                          model.encode_image(inputs["images"]), dim=-1)
        cos_txt = torch.cosine_similarity(half.encode_text(inputs["text"]).float(), model.encode_text(inputs["text"]),
                                          dim=-1)
    assert cos_img.min() > 0.999 and cos_txt.min() > 0.999, (cos_img, cos_txt)
