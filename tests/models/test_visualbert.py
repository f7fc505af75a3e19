"""VisualBERT: the Hugging Face layout loads strictly and reproduces every stored output of
tests/fixtures/visualbert (debug tensors included); tied weights are checked, not assumed."""

import pytest
import torch
from safetensors.torch import load_file, save_file

import polymodal
from polymodal.models.visualbert import VisualBert
from polymodal.weights import CheckpointError


@pytest.fixture(scope="module")
def reference(fixtures):
    folder = fixtures / "visualbert"
    inputs = {k: v.clone() for k, v in load_file(folder / "inputs.safetensors").items()}
    return polymodal.load(folder), inputs, load_file(folder / "outputs.safetensors")


def _run(model, i, need_weights=True):
    with torch.no_grad():
        return model(i["input_ids"], i["visual_embeds"], i["attention_mask"], i["visual_attention_mask"],
                     i["token_type_ids"], i["visual_token_type_ids"], need_weights=need_weights)


def test_fixture_parity_on_every_output(reference):
    model, i, expected = reference
    assert isinstance(model, VisualBert) and model.config.visual_dim == 24 and model.config.bert.pad_token_id == 1
    out = _run(model, i)
    with torch.no_grad():
        embedded = model.embed(i["input_ids"], i["visual_embeds"], i["token_type_ids"], i["visual_token_type_ids"])
    ours = {"prediction_logits": out["mlm_logits"], "seq_relationship_logits": out["itm_logits"],
            "last_hidden_state": out["hidden"], "pooler_output": out["pooled"],
            "last_layer_attentions": out["attentions"][-1], "debug_first_layer_attentions": out["attentions"][0],
            "debug_embedding_output": embedded}
    assert sorted(ours) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(ours[key], value, rtol=1e-4, atol=1e-5, msg=lambda m, k=key: f"{k}: {m}")
    # The fused SDPA path (no attention weights) gives the same outputs.
    fast = _run(model, i, need_weights=False)
    torch.testing.assert_close(fast["mlm_logits"], expected["prediction_logits"], rtol=1e-4, atol=1e-5)
    assert out["attentions"][-1][1, :, :, 5:8].abs().max() == 0  # padded words get no attention


def test_regions_matter_and_bad_shapes_are_named(reference):
    model, i, expected = reference
    no_image = dict(i, visual_attention_mask=torch.zeros_like(i["visual_attention_mask"]))
    assert (_run(model, no_image, False)["mlm_logits"][:, :8] - expected["prediction_logits"][:, :8]).abs().max() > 1e-2
    with pytest.raises(ValueError, match="region features have width 23; this model takes 24"):
        model(i["input_ids"], i["visual_embeds"][..., :23])
    with pytest.raises(ValueError, match=r"expected ids \[B, L\] and regions \[B, R, 24\]"):
        model(i["input_ids"], i["visual_embeds"][0])


def test_untied_decoder_is_refused_by_name(fixtures, tmp_path):
    sd = load_file(fixtures / "visualbert" / "weights.safetensors")
    sd["cls.predictions.decoder.weight"] = sd["cls.predictions.decoder.weight"] + 1
    save_file(sd, tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="cls.predictions.decoder.weight differs from "
                                              "visual_bert.embeddings.word_embeddings.weight"):
        polymodal.load(tmp_path / "w.safetensors")


def test_saved_model_has_the_word_table_once(reference, tmp_path):
    model, i, expected = reference
    polymodal.save(model, tmp_path / "vb")
    assert not any("decoder" in k for k in load_file(tmp_path / "vb" / "model.safetensors"))
    torch.testing.assert_close(_run(polymodal.load(tmp_path / "vb"), i, False)["mlm_logits"],
                               expected["prediction_logits"], rtol=1e-4, atol=1e-5)
