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
from polymodal.world.documents import render_document
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


def _hf_v3_folder(folder, architecture: str, labels: list[str], tok: Tokenizer):
    import transformers

    config = transformers.LayoutLMv3Config(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=66, coordinate_size=6, shape_size=4, input_size=32,
        patch_size=16, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={k: i for i, k in enumerate(labels)})
    torch.manual_seed(0)
    hf = getattr(transformers, f"LayoutLMv3{architecture}")(config).eval()
    hf.save_pretrained(folder)
    tok.save(str(folder / "tokenizer.json"))
    return hf


@pytest.mark.parametrize("architecture,labels,layout", [
    ("ForTokenClassification", FUNSD, "hf-layoutlmv3-task"),  # a Linear classifier
    ("ForTokenClassification", [f"L{i}" for i in range(12)], "hf-layoutlmv3-task"),  # ≥ 10 labels: dense–tanh
    ("ForQuestionAnswering", ["LABEL_0", "LABEL_1"], "hf-layoutlmv3-task"),
    ("ForSequenceClassification", ["invoice", "form", "letter"], "hf-layoutlmv3-sequence-classification")])
def test_layoutlmv3_task_models_give_transformers_outputs(tmp_path, architecture, labels, layout):
    tok = _byte_level_tokenizer(render_document(0, "test", 1, "form").words)
    hf = _hf_v3_folder(tmp_path, architecture, labels, tok)
    ours = polymodal.load(tmp_path)
    assert isinstance(ours, DocumentTaskModel) and polymodal.weights.describe(tmp_path)["layout"] == layout
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, tok.get_vocab_size(), (2, 12), generator=g)
    x0, y0 = torch.randint(0, 900, (2, 12), generator=g), torch.randint(0, 900, (2, 12), generator=g)
    boxes = torch.stack([x0, y0, x0 + 50, y0 + 20], -1)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0
    pixels = torch.randn(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        want = hf(input_ids=ids, bbox=boxes, attention_mask=mask, pixel_values=pixels)
        got = ours(ids, boxes, pixels, mask)
    if architecture == "ForQuestionAnswering":  # ours scores the words only and masks padding with −inf
        real = mask.bool()
        for side in ("start", "end"):
            torch.testing.assert_close(got[f"{side}_logits"][real], want[f"{side}_logits"][:, :12][real], rtol=1e-4, atol=1e-5)
    else:
        torch.testing.assert_close(got["tag_logits" if architecture == "ForTokenClassification" else "logits"],
                                   want.logits, rtol=1e-4, atol=1e-5)


def test_a_layoutlmv3_token_classifier_folder_extracts(tmp_path):
    doc = render_document(0, "test", 1, "form")
    _hf_v3_folder(tmp_path, "ForTokenClassification", FUNSD, _byte_level_tokenizer(doc.words))
    model = DocumentModel.from_folder(tmp_path)  # no labels.json / processor file: HF's own files
    assert model.labels == FUNSD and model.processor.pixels_kind == "signed" and model.model.config.link_dim == 0
    _, batch = model.processor.encode(["Total:", "12"], np.full((2, 4), 500), None)  # as LayoutLMv3's processor:
    assert batch["boxes"][0, 0].tolist() == batch["boxes"][0, -1].tolist() == [0, 0, 0, 0]  # CLS and SEP at 0s
    assert batch["boxes"][0, 1].tolist() == [500] * 4
    found = model.extract(DocumentPage(doc.words, np.asarray(doc.boxes, np.float32), 320, 400, doc.image))
    assert found["links"] == [] and len(found["tags"]) == len(doc.words) and set(found["tags"]) <= set(FUNSD)
    # Without config.json a dense–tanh classifier could be either task: the error says what to add.
    _hf_v3_folder(tmp_path / "twelve", "ForTokenClassification", [f"L{i}" for i in range(12)], _byte_level_tokenizer(doc.words))
    (tmp_path / "twelve" / "config.json").unlink()
    with pytest.raises(CheckpointError, match="put the folder's config.json"):
        polymodal.load(tmp_path / "twelve", config=None)


def _v2_token_classifier(fixtures, tmp_path, architecture: str, width_factor: int = 1, head: str = "classifier",
                         outputs: int = 5):
    sd = {f"layoutlmv2.{k}": v for k, v in load_file(fixtures / "layoutlmv2" / "weights.safetensors").items()}
    torch.manual_seed(0)
    sd[f"{head}.weight"], sd[f"{head}.bias"] = torch.randn(outputs, 64 * width_factor), torch.randn(outputs)
    save_file(sd, tmp_path / "model.safetensors")
    hf_config = json.loads((fixtures / "layoutlmv2" / "config.json").read_text())["hf_config"]
    (tmp_path / "config.json").write_text(json.dumps({**hf_config, "architectures": [architecture]}))
    return sd


@pytest.mark.parametrize("architecture,head,ours_head", [("ForTokenClassification", "classifier", "tagger"),
                                                         ("ForQuestionAnswering", "qa_outputs", "span")])
def test_layoutlmv2_task_heads_map_onto_the_fixture_trunk(fixtures, tmp_path, architecture, head, ours_head):
    outputs = 2 if head == "qa_outputs" else 5
    sd = _v2_token_classifier(fixtures, tmp_path, f"LayoutLMv2{architecture}", head=head, outputs=outputs)
    with pytest.warns(UserWarning, match="missing keys: trunk.visual.backbone."):  # the fixture has no backbone
        ours = polymodal.load(tmp_path, strict=False)
    assert isinstance(ours, DocumentTaskModel) and ours.config.task == ("qa" if head == "qa_outputs" else "entities")
    with pytest.warns(UserWarning, match="missing keys: visual.backbone."):
        trunk = polymodal.load(fixtures / "layoutlmv2", config="layoutlmv2-tiny", strict=False)
    i = load_file(fixtures / "layoutlmv2" / "inputs.safetensors")
    p2 = i["image_features_p2"]
    with torch.no_grad():
        hidden = trunk(i["input_ids"], i["bbox"], None, i["attention_mask"], i["token_type_ids"], feature_map=p2)["text_hidden"]
        want = hidden @ sd[f"{head}.weight"].T + sd[f"{head}.bias"]
        got = getattr(ours, ours_head)(ours.trunk(i["input_ids"], i["bbox"], None, i["attention_mask"], i["token_type_ids"],
                                     feature_map=p2)["text_hidden"])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_layoutlmv2_sequence_classifier_reads_cls_and_the_visual_tokens_before_and_after(fixtures, tmp_path):
    """HF's LayoutLMv2ForSequenceClassification: Linear over [CLS], the mean visual token as it entered
    the trunk and as it left it (HF runs the backbone twice for the first; we keep it from the one pass)."""
    sd = _v2_token_classifier(fixtures, tmp_path, "LayoutLMv2ForSequenceClassification", width_factor=3)
    with pytest.warns(UserWarning, match="missing keys: trunk.visual.backbone."):
        ours = polymodal.load(tmp_path, strict=False)
    assert ours.config.task == "classify" and ours.config.pool == "cls+visual_in+visual"
    torch.testing.assert_close(ours.classifier.weight, sd["classifier.weight"])
    i = load_file(fixtures / "layoutlmv2" / "inputs.safetensors")
    image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        trunk = ours.trunk(i["input_ids"], i["bbox"], image, i["attention_mask"])
        features = torch.cat([trunk["text_hidden"][:, 0], ours.trunk.visual_embeddings(image).mean(1),
                              trunk["visual_hidden"].mean(1)], -1)
        got = ours(i["input_ids"], i["bbox"], image, i["attention_mask"])["logits"]
    torch.testing.assert_close(got, features @ sd["classifier.weight"].T + sd["classifier.bias"], rtol=1e-4, atol=1e-5)
    # A head of neither width is named.
    _v2_token_classifier(fixtures, tmp_path, "LayoutLMv2ForSequenceClassification", width_factor=2)
    with pytest.raises(CheckpointError, match=r"classifier.weight is \[5, 128\]: neither"):
        polymodal.load(tmp_path, strict=False)


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_windows_are_framed_as_transformers_processors_frame_them(version):
    """Ids, boxes and token types of a page, alone and after a question, equal those of
    transformers' LayoutLMv2/v3 tokenizers — what their fine-tuned models read."""
    import transformers

    from polymodal.documents.processor import DocumentProcessor, default_tokenizer
    from polymodal.registry import preset

    words = ["Total:", "12.50", "Invoice", "No:", "A-77"]
    boxes = [[10, 20, 60, 30], [70, 20, 120, 30], [10, 40, 70, 50], [75, 40, 95, 50], [100, 40, 150, 50]]
    if version == "v3":
        tok = _byte_level_tokenizer(words * 3)
        hf_tok = transformers.LayoutLMv3TokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                      sep_token="</s>", cls_token="<s>", pad_token="<pad>",
                                                      unk_token="<unk>", mask_token="<mask>")
    else:
        tok = default_tokenizer()
        hf_tok = transformers.LayoutLMv2TokenizerFast(tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]",
                                                      pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]")
    processor = DocumentProcessor.for_model(preset(f"layoutlm{version}-tiny"), tok)
    for question in (None, "what is the total?"):
        want = hf_tok(question, words, boxes=boxes) if question else hf_tok(words, boxes=boxes)
        _, got = processor.encode(words, np.array(boxes), None, question)
        assert got["ids"][0].tolist() == want["input_ids"] and got["boxes"][0].tolist() == want["bbox"]
        if version == "v2":
            assert got["token_type_ids"][0].tolist() == want["token_type_ids"]
        else:
            assert "token_type_ids" not in got  # RoBERTa's pairs have no segments
