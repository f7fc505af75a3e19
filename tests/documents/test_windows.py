"""Token windows: tokens inherit their word's box, windows overlap by ``stride`` tokens and cover
every token, and per-word predictions come from the window with the most context."""

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from polymodal.documents import normalize_boxes
from polymodal.documents.windows import best_token_per_word, collate, merge_word_logits, token_windows


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    tok = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def test_boxes_are_normalised_to_the_grid():
    grid = normalize_boxes(np.array([[0, 0, 320, 400], [16, 20, 48, 31], [-5, 390, 330, 420]]), 320, 400)
    assert grid.tolist() == [[0, 0, 1000, 1000], [50, 50, 150, 78], [0, 975, 1000, 1000]]
    with pytest.raises(ValueError, match="page size must be positive"):
        normalize_boxes(np.zeros((1, 4)), 0, 10)


def test_windows_overlap_cover_everything_and_inherit_boxes(tokenizer):
    words = [f"invoice{i}" for i in range(60)]  # two word pieces each
    boxes = np.array([[i, 2 * i, i + 10, 2 * i + 5] for i in range(60)])
    windows = token_windows(words, boxes, tokenizer, max_tokens=32, stride=6)
    pieces = sum(len(w.ids) - 2 for w in windows) - 6 * (len(windows) - 1)
    assert pieces == len(tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False).ids)
    for a, b in zip(windows, windows[1:]):
        assert a.ids[-7:-1] == b.ids[1:7]  # consecutive windows share `stride` tokens
    for w in windows:
        assert len(w.ids) <= 32 and w.ids[0] == tokenizer.token_to_id("[CLS]") and w.ids[-1] == tokenizer.token_to_id("[SEP]")
        assert w.boxes[0] == [0, 0, 0, 0] and w.boxes[-1] == [1000] * 4
        for t, word in enumerate(w.word_ids):
            if word >= 0:
                assert w.boxes[t] == boxes[word].tolist()
    best = best_token_per_word(windows, 60)
    assert all(wi >= 0 for wi, _ in best)
    # A word in an overlap is taken from the window where it sits farther from the edge.
    shared = windows[1].word_ids[1]
    wi, t = best[shared]
    body = [k for k, x in enumerate(windows[wi].word_ids) if x >= 0]
    assert min(t - body[0], body[-1] - t) >= 2


def test_merge_takes_each_words_first_token_logits(tokenizer):
    words = ["Total:", "99.50", "Paid", "by", "Card"]
    windows = token_windows(words, np.zeros((5, 4)), tokenizer, max_tokens=16, stride=2, question="How much?")
    batch = collate(windows, pad_id=0)
    logits = torch.arange(batch["ids"].numel() * 3, dtype=torch.float).view(*batch["ids"].shape, 3)
    merged = merge_word_logits(windows, logits, len(words))
    for word, (wi, t) in enumerate(best_token_per_word(windows, len(words))):
        assert batch["word_ids"][wi, t] == word and windows[wi].first[t]
        assert torch.equal(merged[word], logits[wi, t])
    assert windows[0].question_len == len(tokenizer.encode("How much?", add_special_tokens=False).ids)
    with pytest.raises(ValueError, match="stride must be in"):
        token_windows(words, np.zeros((5, 4)), tokenizer, max_tokens=16, stride=20)
    with pytest.raises(ValueError, match="5 words but 4 boxes"):
        token_windows(words, np.zeros((4, 4)), tokenizer)
    empty = token_windows([], np.zeros((0, 4)), tokenizer)
    assert len(empty) == 1 and empty[0].word_ids == [-1, -1]


def test_a_bad_processor_file_is_named(tmp_path, tokenizer):
    from polymodal.documents.processor import DocumentProcessor

    DocumentProcessor(tokenizer).save(tmp_path)
    assert DocumentProcessor.load(tmp_path).sep_box == (1000, 1000, 1000, 1000)
    meta = tmp_path / "document_processor.json"
    for text, message in (('{"image_size": 224, "evil": 1}', r"unknown keys \['evil'\]"), ("[1, 2]", "not a JSON object"),
                          ("{not json", "is not valid JSON")):
        meta.write_text(text)
        with pytest.raises(ValueError, match=message):
            DocumentProcessor.load(tmp_path)
    meta.write_text("{}")
    (tmp_path / "tokenizer.json").write_text("garbage")
    with pytest.raises(ValueError, match="tokenizer.json is not a tokenizers file"):
        DocumentProcessor.load(tmp_path)
