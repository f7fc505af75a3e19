"""DocumentModel on a page longer than one window: the windows run a few per forward (memory stays
bounded however long the page) and give what one forward over all of them gives."""

import numpy as np
import torch

import polymodal.tasks.documents as documents
from polymodal.documents.processor import DocumentProcessor, default_tokenizer
from polymodal.models.document_tasks import DocumentTaskConfig
from polymodal.registry import build, preset
from polymodal.tasks.documents import DocumentModel, DocumentPage


def test_a_long_page_runs_its_windows_in_slices_with_the_same_result(monkeypatch):
    torch.manual_seed(0)
    trunk = preset("layoutlmv2-small")
    model = build(DocumentTaskConfig(trunk, "entities", 7)).eval()
    doc = DocumentModel(model, DocumentProcessor.for_model(trunk, default_tokenizer()),
                        ["O", "B-HEADER", "I-HEADER", "B-QUESTION", "I-QUESTION", "B-ANSWER", "I-ANSWER"])
    rng = np.random.default_rng(0)
    n = 900  # three windows of 512 tokens with the default stride
    words = [f"word{i % 50}" for i in range(n)]
    x = rng.integers(0, 280, n).astype(np.float32)
    y = np.repeat(np.arange(n // 10), 10)[:n].astype(np.float32) * 4
    page = DocumentPage(words, np.stack([x, y, x + 30, y + 3], 1), 320, 400, np.full((400, 320, 3), 255, np.uint8))
    calls = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: calls.append(len(a[0])) or forward(*a, **k))
    monkeypatch.setattr(documents, "WINDOW_BATCH", 1)
    one_by_one = doc.extract(page)
    assert len(calls) >= 3 and set(calls) == {1}
    calls.clear()
    monkeypatch.setattr(documents, "WINDOW_BATCH", 8)
    together = doc.extract(page)
    assert len(calls) == 1 and calls[0] >= 3
    assert one_by_one["tags"] == together["tags"] and len(together["tags"]) == n
    np.testing.assert_allclose([e["confidence"] for e in one_by_one["entities"]],
                               [e["confidence"] for e in together["entities"]], atol=1e-3)
