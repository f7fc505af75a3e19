"""Document task models (LayoutLMv2 entities, LayoutLMv3 QA) exported to ONNX and OpenVINO: verified on
pages of another batch and length than the traced one, and run by ``DocumentModel`` / ``doc --backend``
with the torch model's answers."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import polymodal
from cli_runs import cli_in_process
from polymodal.documents.processor import DocumentProcessor, default_tokenizer
from polymodal.models.document_tasks import DocumentTaskConfig
from polymodal.registry import build, preset
from polymodal.tasks.documents import DocumentModel, DocumentPage, save_labels

pytest.importorskip("onnxruntime")
TAGS = ["O", "B-HEADER", "I-HEADER", "B-QUESTION", "I-QUESTION", "B-ANSWER", "I-ANSWER"]


def _folder(root, trunk_name: str, task: str, labels: list[str]):
    folder = root / f"{trunk_name}-{task}"
    torch.manual_seed(0)
    tokenizer = default_tokenizer()
    trunk = preset(trunk_name)
    trunk.bert.vocab_size = tokenizer.get_vocab_size()
    model = build(DocumentTaskConfig(trunk, task, max(len(labels), 1), link_dim=0))
    with torch.no_grad():  # away from the tiny init, so that a wrong graph shows in the answers
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    polymodal.save(model, folder)
    DocumentProcessor.for_model(trunk, tokenizer).save(folder)
    save_labels(folder, task, labels)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    return _folder(root, "layoutlmv2-tiny", "entities", TAGS), _folder(root, "layoutlmv3-tiny", "qa", [])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POLYMODAL_CACHE", str(folder))
        yield folder


def _page(n_words=90):
    rng = np.random.default_rng(0)
    words = [["Invoice", "Total:", "679.00", "Date:", "2026-12-08", "Name", "Acme", "Ltd"][i % 8] for i in range(n_words)]
    x = rng.integers(0, 500, n_words)
    y = (np.arange(n_words) // 6) * 22 + 10
    boxes = np.stack([x, y, x + 60, y + 16], 1).astype(np.float32)
    image = Image.fromarray(rng.integers(0, 255, (700, 600, 3), dtype=np.uint8))
    return DocumentPage(words, boxes, 600, 700, image)


@pytest.mark.slow
def test_onnx_runs_the_page_as_torch_does(folders, cache):
    entities, qa = folders
    page = _page()  # 90 words: more than one window of the tiny models
    torch_model, exported = DocumentModel.from_folder(entities), DocumentModel.from_folder(entities, backend="onnxruntime")
    assert exported.runtime is not None
    a, b = torch_model.extract(page), exported.extract(page)
    assert [e["label"] for e in a["entities"]] == [e["label"] for e in b["entities"]] and a["entities"]
    np.testing.assert_allclose([e["confidence"] for e in a["entities"]], [e["confidence"] for e in b["entities"]],
                               atol=1e-4)
    answer_torch = DocumentModel.from_folder(qa).ask(page, "what is the total?")
    answer_onnx = DocumentModel.from_folder(qa, backend="onnxruntime").ask(page, "what is the total?")
    assert answer_torch["answer"] == answer_onnx["answer"] and abs(answer_torch["score"] - answer_onnx["score"]) < 1e-4
    exports = sorted(p.name for p in (cache / "exports").iterdir())
    assert len(exports) == 2 and all("-document-onnx-" in n for n in exports)  # made once each, cached


@pytest.mark.slow
def test_the_export_command_writes_a_verified_folder(folders, tmp_path, cache):
    entities, _ = folders
    try:
        import openvino  # noqa: F401
        fmt = "openvino"  # its export goes through the ONNX one, so both are exercised
    except ImportError:
        fmt = "onnx"
    r = cli_in_process("export", entities, "--format", fmt, "--out", tmp_path / fmt)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / fmt / "export.json").read_text())
    assert manifest["format"] == fmt and manifest["task"] == "entities" and manifest["outputs"] == ["tag_logits"]
    assert manifest["inputs"] == ["ids", "boxes", "attention_mask", "token_type_ids", "image"]
    assert manifest["max_abs_diff"] <= 1e-4
    assert {"config.json", "document_processor.json", "labels.json"} <= {p.name for p in (tmp_path / fmt).iterdir()}
    # The cached ONNX export of the QA model (test above) took the same inputs; LayoutLMv3 reads the page too.
    onnx_qa = [p for p in (cache / "exports").glob("*-document-onnx-*")]
    if onnx_qa:
        tasks = {json.loads((p / "export.json").read_text())["task"] for p in onnx_qa}
        assert tasks <= {"entities", "qa"}
