"""The document tasks through `polymodal train` and `polymodal doc`: key–value extraction, QA and
classification train from configs on the world's documents (and its FUNSD export), are scored
with their metrics, save a model folder, and the commands use it on files — bad files included."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polymodal.data.documents import BIO, DocumentFormatError, find_answer_span, funsd_json, read_docvqa, read_funsd, read_funsd_folder
from polymodal.world.documents import world_documents
from polymodal.world.document_files import write_documents
from polymodal.world.documents import render_document
from polymodal.eval.documents import anls, confusion_matrix, entity_f1, f1
from polymodal.tasks.documents import DocumentModel, DocumentPage, decode_bio
from polymodal.train.config import load_config
from polymodal.train.trainer import run
from cli_runs import cli_in_process

CLI = [str(Path(sys.executable).with_name("polymodal"))]


def cli(*args):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})


def _train(out, config, *extra):
    cfg = load_config(Path("configs") / config, ["train.batch_size=16", "optim.lr=2e-3", "optim.warmup_steps=5",
                                                 "train.log_every=10", "train.threads=2", f"train.out={out}", *extra])
    return run(cfg)


def _train_files(out, config, *extra):
    """A world config's run on a user's files: the world's scene counts, which such a source does not
    read (naming them is an error), left out of a copy of the config."""
    import yaml

    raw = yaml.safe_load((Path("configs") / config).read_text())
    for key in ("train_n", "val_n"):
        raw["data"].pop(key)
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "config.yaml").write_text(yaml.safe_dump(raw))
    return _train(out, Path(out).resolve() / "config.yaml", *extra)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_documents(tmp_path_factory.mktemp("world-docs"), "test", 6, pdf=True)


def test_metrics_and_bio_decoding():
    assert anls("Total 9.50", ["total 9.50"]) == 1.0 and anls("abc", ["xyz"]) == 0.0
    assert anls("12.1O.2024", ["12.10.2024"]) == pytest.approx(0.9)
    assert f1({1, 2}, {2, 3}) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert entity_f1([[("question", (0, 1))]], [[("question", (0, 1)), ("answer", (2,))]])["f1"] == pytest.approx(2 / 3)
    assert confusion_matrix([0, 1, 1], [0, 0, 1], 2) == [[1, 1], [0, 1]]
    entities = decode_bio(["B-QUESTION", "I-QUESTION", "B-ANSWER", "O", "I-ANSWER", "I-HEADER"])
    assert [(e.label, e.words) for e in entities] == [("question", [0, 1]), ("answer", [2]), ("answer", [4]),
                                                      ("header", [5])]
    assert find_answer_span(["Total:", "99", "EUR"], ["99 eur"]) == (1, 2) and find_answer_span(["a"], ["b"]) is None


def test_world_documents_round_trip_through_funsd_and_docvqa(files):
    examples = world_documents("test", 6)
    read = read_funsd_folder(files)
    assert len(read) == 6
    for ex, back in zip(examples, read):
        assert back.words == ex.words and np.allclose(back.boxes, ex.boxes, atol=0.5)
        assert back.links == sorted(ex.links) and back.doc_class == ex.doc_class
        assert back.bio_labels() == ex.bio_labels() and back.image.shape == ex.image.shape
        assert funsd_json(back)["form"] == funsd_json(ex)["form"]
    rows = read_docvqa(files / "docvqa.json")
    assert sum(len(ex.qa) for ex in examples) == len(rows)
    assert Path(rows[0]["image"]).is_file() and rows[0]["answers"] == examples[0].qa[0]["answers"]
    bad = files / "annotations" / "bad.json"
    bad.write_text(json.dumps({"form": [{"id": 0, "label": "question", "words": [{"text": "x", "box": [1, 2]}]}]}))
    with pytest.raises(DocumentFormatError, match=r"bad.json: form\[0\]"):
        read_funsd(bad)
    bad.unlink()


@pytest.fixture(scope="module")
def entities_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("doc-entities")
    result = _train(out, "doc-entities-world.yaml", "model.preset=layoutlmv2-tiny", "train.steps=60",
                    "data.train_n=160", "data.val_n=16", "data.box_jitter=0")  # (jitter: the FUNSD run below)
    return out, result


@pytest.mark.slow
def test_entities_train_from_config_and_score(entities_model):
    out, result = entities_model
    assert result["val_entity_f1"] > 0.8 and result["val_link_f1"] > 0.3  # 60 steps of a 2-layer model
    assert result["final_loss"] < 1.0
    assert json.loads((out / "eval.json").read_text())["val_pages"] == 16
    model = DocumentModel.from_folder(out / "model")
    assert model.labels == list(BIO) and model.task == "entities"
    # layoutlmv2-tiny has 40 positions: a world page needs several windows, merged back per word.
    ex = world_documents("val", 1)[0]
    page = DocumentPage.of(ex)
    windows, _ = model.processor.encode(ex.words, np.zeros((len(ex.words), 4)), None)
    assert len(windows) > 1
    found = model.extract(page)
    assert len(found["tags"]) == len(ex.words)
    assert {e["label"] for e in found["entities"]} <= {"header", "question", "answer"}


@pytest.mark.slow
def test_doc_extract_command_on_an_image_and_a_pdf(entities_model, files, tmp_path):
    out, _ = entities_model
    proc = cli("doc", "extract", out / "model", files / "images" / "test-00001.png", "--draw", tmp_path / "drawn.png",
               "--out", tmp_path / "fields.json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "fields.json").read_text())
    (page,) = result["pages"]
    assert page["source"] == "ocr:tesseract" and page["entities"]
    for field in page["fields"]:
        assert set(field) == {"key", "value", "key_box", "value_box", "confidence"} and 0 <= field["confidence"] <= 1
    drawn = np.asarray(Image.open(tmp_path / "drawn.png"))
    original = np.asarray(Image.open(files / "images" / "test-00001.png").convert("RGB"))
    assert drawn.shape == original.shape and (drawn != original).any()
    pdf = cli("doc", "extract", out / "model", files / "pdf" / "test-00001.pdf")
    assert pdf.returncode == 0, pdf.stderr
    assert json.loads(pdf.stdout)["pages"][0]["source"] == "ocr:tesseract"
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 not a pdf")
    bad = cli_in_process("doc", "extract", out / "model", tmp_path / "bad.pdf")
    assert bad.returncode == 2 and "bad.pdf: not a readable PDF" in bad.stderr.replace("\n", "")
    wrong = cli_in_process("doc", "ask", out / "model", files / "images" / "test-00001.png", "what is the total?")
    assert wrong.returncode == 2 and "this is a 'entities' model" in wrong.stderr
    # A folder: one JSON per document (a.png and a.pdf both kept), one CSV of every field, the bad file named.
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    for source, target in ((files / "images" / "test-00001.png", inbox / "test-00001.png"),
                           (files / "pdf" / "test-00001.pdf", inbox / "sub" / "test-00001.pdf"),
                           (tmp_path / "bad.pdf", inbox / "bad.pdf")):
        target.write_bytes(source.read_bytes())
    batch = cli("doc", "extract", out / "model", inbox, "--out", tmp_path / "results", "--clean", "off", "--psm", "3")
    assert batch.returncode == 0, batch.stderr
    assert "bad.pdf: not a readable PDF" in batch.stderr.replace("\n", "")
    results = {p.name: json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")}
    assert set(results) == {"test-00001.json", "test-00001.png.json"}  # sorted: sub/test-00001.pdf came first
    import csv

    with open(tmp_path / "results" / "fields.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(len(p["fields"]) for r in results.values() for p in r["pages"]) > 0
    assert {r["file"] for r in rows} <= {str(inbox / "test-00001.png"), str(inbox / "sub" / "test-00001.pdf")}
    assert all(len(r["key_box"].split()) == 4 and float(r["confidence"]) <= 1 for r in rows)
    several = cli_in_process("doc", "extract", out / "model", inbox, "--out", tmp_path / "one.json")
    assert several.returncode == 2 and "--out must name a folder" in several.stderr


@pytest.mark.slow
def test_qa_trains_on_layoutlmv3_and_answers_with_a_box(tmp_path, files):
    result = _train(tmp_path, "doc-qa-world.yaml", "model.preset=layoutlmv3-tiny", "train.steps=60",
                    "data.train_n=100", "data.val_n=10")
    assert 0 <= result["val_exact_match"] <= result["val_anls"] <= 1 and result["val_questions"] >= 30
    assert result["val_anls"] > 0.1  # chance (a random span) is ≈ 0
    proc = cli("doc", "ask", tmp_path / "model", files / "images" / "test-00002.png", "What is the ID number?")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["page"] == 1 and len(answer["box"]) == 4 and 0 <= answer["score"] <= 1 and answer["answer"]
    (tmp_path / "notes.png").write_text("not an image")
    bad = cli_in_process("doc", "ask", tmp_path / "model", tmp_path / "notes.png", "What is the total?")
    assert bad.returncode == 2 and "notes.png: not a readable image or PDF" in bad.stderr.replace("\n", "")
    empty = cli_in_process("doc", "ask", tmp_path / "model", files / "images" / "test-00002.png", "  ")
    assert empty.returncode == 2 and "the question is empty" in empty.stderr
    long = cli_in_process("doc", "ask", tmp_path / "model", files / "images" / "test-00002.png", "why " * 600)
    assert long.returncode == 2 and "Traceback" not in long.stderr and "fit beside a page's words" in long.stderr
    psm = cli_in_process("doc", "ask", tmp_path / "model", files / "images" / "test-00002.png", "total?", "--psm", "99")
    assert psm.returncode == 2 and "--psm must be one of Tesseract's page-segmentation modes 0–13" in psm.stderr


@pytest.mark.slow
def test_classification_trains_with_a_confusion_matrix_and_classifies_a_folder(tmp_path, files):
    result = _train(tmp_path / "run", "doc-classify-world.yaml", "model.preset=layoutlmv2-tiny", "train.steps=40",
                    "data.train_n=160", "data.val_n=40")
    assert result["val_accuracy"] > 0.6 > result["val_majority_class_accuracy"]
    assert sum(map(sum, result["val_confusion"])) == 40 and (tmp_path / "run" / "confusion.png").is_file()
    folder = tmp_path / "inbox"
    folder.mkdir()
    for p in (files / "images").glob("*.png"):
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.png").write_bytes(b"not an image")
    proc = cli("doc", "classify", tmp_path / "run" / "model", folder)
    assert proc.returncode == 0, proc.stderr
    lines = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    assert len(lines) == 6 and all(c in ("invoice", "receipt", "form", "id_card", "letter") for _, c, _ in lines)
    assert "broken.png" in proc.stderr
    truth = {f"test-{i:05d}.png": render_document(0, "test", i).doc_class for i in range(6)}
    assert sum(truth[Path(f).name] == c for f, c, _ in lines) >= 3  # read by Tesseract, not ground truth


def test_funsd_folder_trains_the_same_way(tmp_path, files):
    result = _train_files(tmp_path, "doc-entities-world.yaml", "model.preset=layoutlmv2-tiny", "train.steps=4",
                          "data.kind=funsd", f"data.path={files}", "train.batch_size=4", "data.box_jitter=8")
    assert result["val_pages"] == 6 and 0 <= result["val_entity_f1"] <= 1


@pytest.mark.slow
def test_pretraining_learns_its_three_tasks_and_a_task_starts_from_it(tmp_path):
    result = _train(tmp_path / "pre", "doc-pretrain-world.yaml", "model.preset=layoutlmv2-tiny", "train.steps=16",
                    "data.train_n=64", "data.val_n=16")
    for task in ("mlm", "tia", "tim"):
        assert result[f"val_{task}_loss"] > 0 and 0 <= result[f"val_{task}_accuracy"] <= 1
    # Below a uniform guess on each task: ln(vocabulary) for the words, ln 2 for the two binary tasks.
    assert result["val_mlm_loss"] < np.log(30522) and result["val_tia_loss"] < np.log(2) > result["val_tim_loss"]
    from polymodal.train.config import ConfigError
    from polymodal.train.document_pretraining import PretrainKind

    cfg = load_config(Path("configs/doc-pretrain-world.yaml"), ["model.preset=layoutlmv2-tiny", "data.train_n=16",
                                                                "data.val_n=4", "train.batch_size=8"])
    kind = PretrainKind(cfg, None)
    kind.load_data()
    a, b = kind.batch(3), kind.batch(3)
    for key in a:
        assert (a[key] == b[key]).all(), key  # a pure function of the step (exact resume)
    masked = a["mlm_labels"] != -100
    assert masked.any() and (a["tia_labels"][masked] == -100).all()  # masked tokens are not asked about lines
    assert (a["tia_labels"] == 1).any() or not (a["tim_labels"] == 0).any()
    pre = tmp_path / "pre" / "model"
    tuned = _train(tmp_path / "tuned", "doc-entities-world.yaml", "model.preset=layoutlmv2-tiny", "train.steps=2",
                   "data.train_n=32", "data.val_n=4", f"model.init_from={pre}")
    assert "val_entity_f1" in tuned
    from polymodal.weights import load_checkpoint

    torch_equal = load_checkpoint(pre).trunk.stem.word.weight.equal
    assert not torch_equal(load_checkpoint(tmp_path / "tuned" / "model").trunk.stem.word.weight)  # trained on from it
    with pytest.raises(ConfigError, match="is not a document model with this run's trunk"):
        _train(tmp_path / "bad", "doc-entities-world.yaml", "model.preset=layoutlmv3-tiny", "train.steps=1",
               "data.train_n=32", "data.val_n=4", f"model.init_from={pre}")


@pytest.mark.slow
def test_class_folders_and_docvqa_train_from_ocr_with_a_cache(tmp_path, files):
    result = _train_files(tmp_path / "cls", "doc-classify-world.yaml", "model.preset=layoutlmv2-tiny",
                          "train.steps=2", "train.batch_size=4", "data.kind=folders", f"data.path={files / 'classes'}")
    classes = sorted(p.name for p in (files / "classes").iterdir())
    assert json.loads((tmp_path / "cls" / "model" / "labels.json").read_text())["labels"] == classes
    assert sum(map(sum, result["val_confusion"])) == 6
    assert len(list((tmp_path / "cls" / "ocr-cache").glob("*.json"))) == 6  # one OCR per distinct page
    qa = _train_files(tmp_path / "qa", "doc-qa-world.yaml", "model.preset=layoutlmv3-tiny", "train.steps=2",
                      "train.batch_size=4", "data.kind=docvqa", f"data.path={files / 'docvqa.json'}")
    assert qa["val_questions"] == len(read_docvqa(files / "docvqa.json"))
    from polymodal.data.documents import docvqa_examples

    examples = docvqa_examples(files / "docvqa.json", tmp_path / "qa" / "ocr-cache")
    found = [p["span"] is not None for ex in examples for p in ex.qa]
    assert sum(found) / len(found) > 0.8  # answers located among the OCR'd words
    ex = examples[0]
    first, last = next(p["span"] for p in ex.qa if p["span"])
    assert " ".join(ex.words[first:last + 1]).lower() in [a.lower() for p in ex.qa for a in p["answers"]]


def test_box_jitter_moves_each_words_box_as_one_and_leaves_specials():
    import torch

    from polymodal.train.documents import jitter_boxes

    boxes = torch.tensor([[[0, 0, 0, 0], [100, 200, 150, 220], [100, 200, 150, 220], [300, 200, 350, 220],
                           [1000, 1000, 1000, 1000]]])
    words = torch.tensor([[-1, 0, 0, 1, -1]])
    moved = jitter_boxes(boxes, words, 5, torch.Generator().manual_seed(0))
    assert torch.equal(moved[0, 0], boxes[0, 0]) and torch.equal(moved[0, 4], boxes[0, 4])
    assert torch.equal(moved[0, 1], moved[0, 2])  # one word, one move
    assert (moved - boxes).abs().max() <= 5 and not torch.equal(moved, boxes)
    assert (moved[..., 2] >= moved[..., 0]).all() and (moved[..., 3] >= moved[..., 1]).all()
