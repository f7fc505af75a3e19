"""The four published VisualBERT task models load from transformers' layout and give its numbers: random
tiny ``VisualBertFor*`` models made by transformers (the test reference), saved, loaded as ours, compared."""

import pytest
import torch

import polymodal
from polymodal.models.visualbert_tasks import VisualBertTask
from polymodal.weights import describe

transformers = pytest.importorskip("transformers")

CLASSES = {"vqa": "VisualBertForQuestionAnswering", "nlvr2": "VisualBertForVisualReasoning",
           "vcr": "VisualBertForMultipleChoice", "flickr": "VisualBertForRegionToPhraseAlignment"}


def _reference(task: str, folder):
    config = transformers.VisualBertConfig(vocab_size=120, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                                           intermediate_size=96, max_position_embeddings=40, visual_embedding_dim=20,
                                           num_labels=7 if task == "vqa" else 2)
    if task == "vqa":
        config.id2label = {i: answer for i, answer in enumerate(["yes", "no", "2", "red", "dog", "left", "tea"])}
        config.label2id = {v: k for k, v in config.id2label.items()}
    torch.manual_seed(0)
    model = getattr(transformers, CLASSES[task])(config).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # weights far from the 0.02 init, so that a wrong wiring shows
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / (p.shape[-1] ** 0.5 if p.dim() > 1 else 10))
    model.save_pretrained(folder)
    return model


def _inputs(b=2, n=7, r=5, d=20, choices=None):
    g = torch.Generator().manual_seed(2)
    shape = (b, choices, n) if choices else (b, n)
    ids = torch.randint(3, 120, shape, generator=g)
    mask = torch.ones(shape, dtype=torch.long)
    mask[1, ..., 5:] = 0
    rshape = (b, choices, r, d) if choices else (b, r, d)
    regions = torch.randn(rshape, generator=g)
    rmask = torch.ones(rshape[:-1], dtype=torch.long)
    rmask[0, ..., 3:] = 0
    return ids, mask, regions, rmask


@pytest.mark.parametrize("task", ["vqa", "nlvr2", "flickr"])
def test_single_picture_heads_match_transformers(task, tmp_path):
    hf = _reference(task, tmp_path)
    ours = polymodal.load(tmp_path)
    assert describe(tmp_path)["layout"] == "hf-visualbert-task"
    assert isinstance(ours, VisualBertTask) and ours.config.task == task
    ids, mask, regions, rmask = _inputs()
    kwargs = dict(input_ids=ids, attention_mask=mask, visual_embeds=regions, visual_attention_mask=rmask,
                  token_type_ids=torch.zeros_like(ids), visual_token_type_ids=torch.ones_like(rmask))
    phrases = torch.tensor([[1, 2, -1], [4, 3, 2]])
    if task == "flickr":
        kwargs["region_to_phrase_position"] = phrases
    with torch.no_grad():
        expected = hf(**kwargs).logits
        got = ours(ids, regions, mask, rmask, phrase_positions=phrases if task == "flickr" else None)["logits"]
    if task == "flickr":  # masked regions: the float's lowest value, added
        real = rmask[:, None, :].expand_as(got).bool()
        torch.testing.assert_close(got[real], expected[real], rtol=1e-4, atol=1e-5)
        assert (got[~real] < -1e37).all() and (expected[~real] < -1e37).all()
    else:
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    if task == "vqa":
        assert ours.config.label_names == ("yes", "no", "2", "red", "dog", "left", "tea")


def test_multiple_choice_matches_transformers_and_shares_one_picture(tmp_path):
    hf = _reference("vcr", tmp_path)
    ours = polymodal.load(tmp_path)
    assert ours.config.task == "vcr"
    ids, mask, regions, rmask = _inputs(choices=4)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, visual_embeds=regions, visual_attention_mask=rmask).logits
        got = ours(ids, regions, mask, rmask)["logits"]
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
        shared = ours(ids, regions[:, 0], mask, rmask[:, 0])["logits"]  # one picture for every choice
        same = hf(input_ids=ids, attention_mask=mask, visual_embeds=regions[:, :1].expand_as(regions).contiguous(),
                  visual_attention_mask=rmask[:, :1].expand_as(rmask).contiguous()).logits
    torch.testing.assert_close(shared, same, rtol=1e-4, atol=1e-5)
    assert got.shape == (2, 4)
