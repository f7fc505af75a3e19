"""ViLBERT: the vilbert-multi-task layout loads (its unused q_dense tensors reported) and reproduces
every stored output of tests/fixtures/vilbert, co-attention probabilities included."""

import json

import pytest
import torch
from safetensors.torch import load_file

import polymodal
from polymodal.models.vilbert import ViLBert
from polymodal.weights import CheckpointError


@pytest.fixture(scope="module")
def reference(fixtures):
    folder = fixtures / "vilbert"
    with pytest.warns(UserWarning, match=r"8 tensors the reference never uses are not loaded \(.*q_dense1"):
        model = polymodal.load(folder)
    inputs = {k: v.clone() for k, v in load_file(folder / "inputs.safetensors").items()}
    return model, inputs, load_file(folder / "outputs.safetensors")


def _run(model, i, need_weights=True):
    with torch.no_grad():
        return model(i["input_txt"], i["image_feat"], i["image_loc"], i["attention_mask"], i["image_attention_mask"],
                     i["token_type_ids"], need_weights=need_weights)


def test_fixture_parity_on_every_output(reference):
    model, i, expected = reference
    c = model.config
    assert isinstance(model, ViLBert) and (c.image_width, c.co_width, c.text_co_layers) == (48, 48, (0, 1))
    out = _run(model, i)
    a = out["attentions"]
    with torch.no_grad():
        text_emb, image_emb = model.stem(i["input_txt"], i["token_type_ids"]), model.region_stem(i["image_feat"],
                                                                                                 i["image_loc"])
    ours = {"prediction_scores_t": out["mlm_logits"], "prediction_scores_v": out["region_logits"],
            "seq_relationship_score": out["align_logits"], "pooled_output_t": out["pooled_text"],
            "pooled_output_v": out["pooled_image"], "sequence_output_t": out["text"], "sequence_output_v": out["image"],
            "debug_text_embedding_output": text_emb, "debug_image_embedding_output": image_emb,
            "debug_coattn0_text_queries_image_keys_probs": a["co"][0][0],
            "debug_coattn0_image_queries_text_keys_probs": a["co"][0][1],
            "debug_last_text_layer_attention_probs": a["a"][-1], "debug_last_image_layer_attention_probs": a["b"][-1]}
    assert sorted(ours) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(ours[key], value, rtol=1e-4, atol=1e-5, msg=lambda m, k=key: f"{k}: {m}")
    fast = _run(model, i, need_weights=False)  # the fused SDPA path
    torch.testing.assert_close(fast["mlm_logits"], expected["prediction_scores_t"], rtol=1e-4, atol=1e-5)
    # Padded regions (row 1 has 4 of 6) receive no attention from the text.
    assert a["co"][0][0][1, :, :, 4:].abs().max() == 0


def test_the_schedule_is_the_references(reference):
    """Shifting the text co-attention ids changes the outputs (the fixture README's mutation, 8.7)."""
    import dataclasses

    model, i, expected = reference
    shifted = ViLBert(dataclasses.replace(model.config, text_co_layers=(1, 2))).eval()
    shifted.load_state_dict(model.state_dict())
    assert (_run(shifted, i, False)["mlm_logits"] - expected["prediction_scores_t"]).abs().max() > 1e-2


def test_config_is_required_and_bad_inputs_are_named(fixtures, tmp_path, reference):
    model, i, _ = reference
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "weights.safetensors").write_bytes((fixtures / "vilbert" / "weights.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="needs its config .v_biattention_id"):
        polymodal.load(tmp_path / "w")
    (tmp_path / "w" / "config.json").write_text(json.dumps(json.loads(
        (fixtures / "vilbert" / "config.json").read_text())["vilbert_config_args"]))
    with pytest.warns(UserWarning):
        assert polymodal.load(tmp_path / "w").config == model.config  # the reference's own config format
    with pytest.raises(ValueError, match=r"expected regions \[B, R, 24\] and boxes \[B, R, 5\]"):
        model(i["input_txt"], i["image_feat"], i["image_loc"][..., :4])
