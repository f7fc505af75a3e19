"""Hugging Face LayoutLM token classifiers (FUNSD-style taggers) load as our entity models: the
same tag logits as transformers' LayoutLMv3ForTokenClassification, v2's head mapped onto the
trunk the fixture pins, and a folder of theirs (tokenizer.json, id2label) runs ``extract``."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

import polymodal
from polymodal.data.world.documents import render_document
from polymodal.models.document_tasks import DocumentTaskModel
from polymodal.tasks.documents import DocumentModel, DocumentPage
from polymodal.weights import CheckpointError

FUNSD = ["O", "B-HEADER", "I-HEADER", "B-QUESTION", "I-QUESTION", "B-ANSWER", "I-ANSWER"]


def _byte_level_tokenizer(words: list[str]) -> Tokenizer:
    """A small RoBERTa-style byte-level BPE (<s> </s> <pad> as LayoutLMv3's) trained on ``words``."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([" ".join(words)] * 4, trainer)
    return tok


def test_layoutlmv3_token_classifier_gives_transformers_logits_and_extracts(tmp_path):
    import transformers

    doc = render_document(0, "test", 1, "form")
    tok = _byte_level_tokenizer(doc.words)
    config = transformers.LayoutLMv3Config(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=66, coordinate_size=6, shape_size=4, input_size=32,
        patch_size=16, num_labels=len(FUNSD), id2label=dict(enumerate(FUNSD)), label2id={k: i for i, k in enumerate(FUNSD)})
    torch.manual_seed(0)
    hf = transformers.LayoutLMv3ForTokenClassification(config).eval()
    hf.save_pretrained(tmp_path)
    tok.save(str(tmp_path / "tokenizer.json"))

    ours = polymodal.load(tmp_path)
    assert isinstance(ours, DocumentTaskModel) and ours.config.task == "entities" and ours.config.link_dim == 0
    assert polymodal.weights.describe(tmp_path)["layout"] == "hf-layoutlmv3-token-classification"
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, tok.get_vocab_size(), (2, 12), generator=g)
    x0, y0 = torch.randint(0, 900, (2, 12), generator=g), torch.randint(0, 900, (2, 12), generator=g)
    boxes = torch.stack([x0, y0, x0 + 50, y0 + 20], -1)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0
    pixels = torch.randn(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        want = hf(input_ids=ids, bbox=boxes, attention_mask=mask, pixel_values=pixels).logits
        got = ours(ids, boxes, pixels, mask)["tag_logits"]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)

    model = DocumentModel.from_folder(tmp_path)  # no labels.json / processor file: HF's own files
    assert model.labels == FUNSD and model.processor.pixels_kind == "signed"
    _, batch = model.processor.encode(["Total:", "12"], np.full((2, 4), 500), None)  # as LayoutLMv3's processor:
    assert batch["boxes"][0, 0].tolist() == batch["boxes"][0, -1].tolist() == [0, 0, 0, 0]  # CLS and SEP at 0s
    assert batch["boxes"][0, 1].tolist() == [500] * 4
    found = model.extract(DocumentPage(doc.words, np.asarray(doc.boxes, np.float32), 320, 400, doc.image))
    assert found["links"] == [] and len(found["tags"]) == len(doc.words) and set(found["tags"]) <= set(FUNSD)


def _v2_token_classifier(fixtures, tmp_path, architecture: str, width_factor: int = 1):
    sd = {f"layoutlmv2.{k}": v for k, v in load_file(fixtures / "layoutlmv2" / "weights.safetensors").items()}
    torch.manual_seed(0)
    sd["classifier.weight"], sd["classifier.bias"] = torch.randn(5, 64 * width_factor), torch.randn(5)
    save_file(sd, tmp_path / "model.safetensors")
    hf_config = json.loads((fixtures / "layoutlmv2" / "config.json").read_text())["hf_config"]
    (tmp_path / "config.json").write_text(json.dumps({**hf_config, "architectures": [architecture]}))
    return sd


def test_layoutlmv2_token_classifier_maps_its_head_onto_the_fixture_trunk(fixtures, tmp_path):
    sd = _v2_token_classifier(fixtures, tmp_path, "LayoutLMv2ForTokenClassification")
    with pytest.warns(UserWarning, match="missing keys: trunk.visual.backbone."):  # the fixture has no backbone
        ours = polymodal.load(tmp_path, strict=False)
    assert isinstance(ours, DocumentTaskModel) and ours.config.num_labels == 5
    with pytest.warns(UserWarning, match="missing keys: visual.backbone."):
        trunk = polymodal.load(fixtures / "layoutlmv2", config="layoutlmv2-tiny", strict=False)
    i = load_file(fixtures / "layoutlmv2" / "inputs.safetensors")
    p2 = i["image_features_p2"]
    with torch.no_grad():
        hidden = trunk(i["input_ids"], i["bbox"], None, i["attention_mask"], i["token_type_ids"], feature_map=p2)["text_hidden"]
        want = hidden @ sd["classifier.weight"].T + sd["classifier.bias"]
        got = ours.tagger(ours.trunk(i["input_ids"], i["bbox"], None, i["attention_mask"], i["token_type_ids"],
                                     feature_map=p2)["text_hidden"])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_a_sequence_classifier_is_not_taken_for_a_token_classifier(fixtures, tmp_path):
    _v2_token_classifier(fixtures, tmp_path, "LayoutLMv2ForSequenceClassification", width_factor=3)
    assert polymodal.weights.describe(tmp_path)["layout"] == "hf-layoutlmv2"
    with pytest.raises(CheckpointError, match="classifier"):
        polymodal.load(tmp_path)
    # Without a config naming it, the head's width says it is not a token classifier.
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"classifier.weight is \[5, 192\]: not a token classifier"):
        polymodal.load(tmp_path)
