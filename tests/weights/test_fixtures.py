"""The golden outputs of open_clip and transformers (tests/fixtures) reproduced by our loaders."""

import json

import pytest
import torch
from safetensors.torch import load_file

import polymodal
from polymodal.weights import detect_layout, read_state_dict


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def _compare_all(ours: dict, expected: dict) -> None:
    """Every output of the fixture, ``debug_*`` intermediates included, against ours."""
    assert sorted(ours) == sorted(expected), "every stored output must be compared"
    for key in expected:
        torch.testing.assert_close(ours[key], expected[key], rtol=1e-4, atol=1e-5, msg=lambda m, k=key: f"{k}: {m}")


def _vision_trunk(model, images):
    """(tokens after ln_pre [B, 1+N, D], after the blocks, before the final norm)."""
    v = model.visual
    x = v.norm_pre(torch.cat([v.cls_token.expand(images.shape[0], -1, -1), v.stem(images)], 1) + v.pos_embed)
    return x, v.transformer(x)[0]


@pytest.mark.parametrize("variant", ["", "_quickgelu"])
def test_open_clip_fixture(fixtures, variant):
    folder = fixtures / "clip_openai"
    cfg = json.loads((folder / f"config{variant}.json").read_text())
    model = polymodal.load(folder / "weights.safetensors", config=cfg)
    assert model.config.vision.act == ("quick_gelu" if variant else "gelu")
    assert model.config.vision.heads == 2 and model.config.text.heads == 2
    inputs = load_file(folder / "inputs.safetensors")
    images, text = inputs["images"], inputs["text"]
    with torch.no_grad():
        per_image, per_text = model.logits(images, text)
        after_ln_pre, after_blocks = _vision_trunk(model, images)
        ours = {"image_features": model.encode_image(images), "text_features": model.encode_text(text),
                "image_features_normalized": model.encode_image(images, normalize=True),
                "text_features_normalized": model.encode_text(text, normalize=True),
                "logits_per_image": per_image, "logits_per_text": per_text,
                "debug_vision_tokens_after_ln_pre": after_ln_pre,
                "debug_vision_tokens_after_transformer": after_blocks,
                "debug_text_tokens_after_ln_final": model.text.forward_features(text)}
    _compare_all(ours, load_file(folder / f"outputs{variant}.safetensors"))


def test_hf_clip_fixture(fixtures):
    folder = fixtures / "clip_hf"
    assert detect_layout(read_state_dict(folder)) == "hf-clip"
    model = polymodal.load(folder)  # architecture from the HF config in config.json
    assert model.config.text.eot_token_id == 999
    inputs = load_file(folder / "inputs.safetensors")
    pixels, ids, mask = inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"]
    with torch.no_grad():
        per_image, per_text = model.logits(pixels, ids, mask)
        image, text = model.encode_image(pixels), model.encode_text(ids, mask)
        ours = {"image_features": image, "text_features": text, "vision_pooler_output": image,
                "text_pooler_output": text, "image_embeds": model.encode_image(pixels, normalize=True),
                "text_embeds": model.encode_text(ids, normalize=True),  # the mask changes no pooled output
                "logits_per_image": per_image, "logits_per_text": per_text,
                "debug_vision_last_hidden_state": _vision_trunk(model, pixels)[1],
                # With the padding mask, every position (padding too) matches HF's last_hidden_state.
                "debug_text_last_hidden_state": model.text.forward_features(ids, mask)}
    _compare_all(ours, load_file(folder / "outputs.safetensors"))


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


def test_s3d_fixture(fixtures):
    """MIL-NCE S3D-G: every output within 1e-3 × max|ref| (the fixture's tolerance: 20 BatchNorm
    layers amplify rounding), the text module's ids from the official word splitting."""
    from polymodal.models.s3d import S3DWords

    folder = fixtures / "s3d"
    assert detect_layout(read_state_dict(folder)) == "s3d-howto100m"
    model = polymodal.load(folder).eval()
    inputs = load_file(folder / "inputs.safetensors")
    texts = json.loads((folder / "config.json").read_text())["texts"]
    assert torch.equal(S3DWords.from_file(folder / "dict.npy")(texts), inputs["text_ids"])
    with torch.no_grad():
        features = model.forward_features(inputs["video"], intermediates=True)
        out = model(inputs["video"])
        ours = {**out, "text_embedding": model.encode_text(inputs["text_ids"]),
                "debug_after_conv1": features["after_conv1"], "debug_after_gating_2c": features["after_gating_2c"]}
    expected = load_file(folder / "outputs.safetensors")
    assert sorted(ours) == sorted(expected)
    for key, ref in expected.items():
        err = (ours[key] - ref).abs().max() / ref.abs().max()
        assert err <= 1e-3, f"{key}: max|mine − ref| = {err:.2e} × max|ref|"


def test_videoclip_fixture(fixtures):
    """MMPT MMFusionSeparate: pooled video and text, and both towers' sequences, at 1e-4."""
    folder = fixtures / "videoclip"
    assert detect_layout(read_state_dict(folder)) == "mmpt-videoclip"
    model = polymodal.load(folder).eval()
    c = model.config
    assert (c.video_layers, c.text.layers, c.max_video_len, c.input_dim, c.cls_id, c.sep_id) == (1, 2, 6, 32, 2, 3)
    x = load_file(folder / "inputs.safetensors")
    with torch.no_grad():
        out = model(x["caps"], x["cmasks"], x["vfeats"], x["vmasks"])
        _, video_hidden = model.encode_video(x["vfeats"], x["vmasks"], return_hidden=True)
        ids, mask = torch.cat([x["caps"][:, :1], x["caps"][:, 2:]], 1), torch.cat([x["cmasks"][:, :1], x["cmasks"][:, 2:]], 1)
        _, text_hidden = model.encode_text(ids, mask, return_hidden=True)
        ours = {**out, "debug_video_sequence_output": video_hidden, "debug_text_sequence_output": text_hidden,
                "debug_video_tokens_after_videomlp": model.video_mlp(x["vfeats"])}
    _compare_all(ours, load_file(folder / "outputs.safetensors"))
    # fairseq's own checkpoints prefix every key with "mmmodel."
    prefixed = {f"mmmodel.{k}": v for k, v in read_state_dict(folder).items()}
    assert detect_layout(prefixed) == "mmpt-videoclip"


def test_videoclip_video_sep_position_does_not_depend_on_the_clip_length(fixtures):
    """The video [SEP] sits at max_video_len + 1 however many steps a clip has, so 4 real steps give
    the same pooled video alone as padded to 6 (contiguous positions would move the [SEP])."""
    model = polymodal.load(fixtures / "videoclip").eval()
    x = load_file(fixtures / "videoclip" / "inputs.safetensors")
    feats = x["vfeats"][1:2]  # 4 real steps, 2 padded
    with torch.no_grad():
        padded = model.encode_video(feats, x["vmasks"][1:2])
        short = model.encode_video(feats[:, :4], torch.ones(1, 4, dtype=torch.long))
    torch.testing.assert_close(short, padded, rtol=1e-5, atol=1e-6)
