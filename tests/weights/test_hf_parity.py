"""Tiny random transformers models load into ours and give the same numbers (≤ 1e-5, fp32)."""

import pytest
import torch
import transformers

import polymodal
from polymodal.weights import detect_layout, read_state_dict

ATOL = 1e-5


def _randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial weights (HF's init leaves LayerNorms at 1/0 and biases at 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() < 2 else p.shape[-1] ** -0.5))


def _save(model, folder, fmt):
    if fmt == "safetensors":
        model.save_pretrained(folder)
    else:  # a legacy pytorch_model.bin next to config.json
        model.config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_hf_clip_model(tmp_path, fmt):
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=12, eos_token_id=98, bos_token_id=97),
        vision_config=dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=3,
                           image_size=32, patch_size=8),
        projection_dim=24)
    ref = transformers.CLIPModel(cfg).eval()
    _randomize(ref)
    _save(ref, tmp_path, fmt)
    ours = polymodal.load(tmp_path)
    pixels = torch.randn(3, 3, 32, 32)
    ids = torch.randint(1, 97, (3, 12))
    ids[:, 0], ids[0, 5], ids[1, 11], ids[2, 8] = 97, 98, 98, 98
    mask = (torch.arange(12)[None] <= (ids == 98).int().argmax(-1)[:, None]).long()
    with torch.no_grad():
        out = ref(input_ids=ids, pixel_values=pixels, attention_mask=mask)
        torch.testing.assert_close(ours.encode_image(pixels, normalize=True), out.image_embeds, rtol=0, atol=ATOL)
        torch.testing.assert_close(ours.encode_text(ids, mask, normalize=True), out.text_embeds, rtol=0, atol=ATOL)
        torch.testing.assert_close(ours.logits(pixels, ids, mask)[0], out.logits_per_image, rtol=0, atol=1e-4)


@pytest.mark.parametrize("classifier", [False, True])
def test_hf_vit(tmp_path, classifier):
    cfg = transformers.ViTConfig(hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=96,
                                 image_size=32, patch_size=8, num_labels=7)
    ref = (transformers.ViTForImageClassification(cfg) if classifier else transformers.ViTModel(cfg)).eval()
    _randomize(ref)
    _save(ref, tmp_path, "safetensors")
    assert detect_layout(read_state_dict(tmp_path)) == "hf-vit"
    ours = polymodal.load(tmp_path)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = ref(pixel_values=pixels)
        if classifier:
            torch.testing.assert_close(ours(pixels), out.logits, rtol=0, atol=ATOL)
        else:
            torch.testing.assert_close(ours.forward_features(pixels), out.last_hidden_state, rtol=0, atol=ATOL)
            torch.testing.assert_close(ours(pixels), out.pooler_output, rtol=0, atol=ATOL)


def test_hf_vit_position_interpolation_matches_transformers(tmp_path):
    cfg = transformers.ViTConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=3, intermediate_size=96,
                                 image_size=32, patch_size=8)
    ref = transformers.ViTModel(cfg, add_pooling_layer=False).eval()
    _randomize(ref)
    _save(ref, tmp_path, "safetensors")
    ours = polymodal.load(tmp_path)
    pixels = torch.randn(1, 3, 48, 48)  # 6×6 patches instead of 4×4
    with torch.no_grad():
        got = ours.forward_features(pixels)
        want = ref(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
    assert got.shape == want.shape == (1, 37, 48)
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)


def test_hf_bert(tmp_path):
    cfg = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=40)
    ref = transformers.BertModel(cfg).eval()
    _randomize(ref)
    _save(ref, tmp_path, "bin")
    ours = polymodal.load(tmp_path)
    assert ours.config.pooling == "cls" and ours.config.tanh_pooler
    ids = torch.randint(1, 120, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    types = torch.zeros_like(ids)
    types[:, 4:] = 1
    with torch.no_grad():
        out = ref(input_ids=ids, attention_mask=mask, token_type_ids=types)
        hidden = ours.forward_features(ids, mask, types)
        torch.testing.assert_close(hidden[mask.bool()], out.last_hidden_state[mask.bool()], rtol=0, atol=ATOL)
        torch.testing.assert_close(ours(ids, mask, types), out.pooler_output, rtol=0, atol=ATOL)
