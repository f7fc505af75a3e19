"""``polymodal doc …`` run as a user runs it: a real subprocess of the installed console script (the
option errors in this process, by click's runner: each saves a Python and torch start-up)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from polymodal.world.documents import render_document
from cli_runs import cli_in_process

CLI = [str(Path(sys.executable).with_name("polymodal"))]


def run(*args):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})


@pytest.mark.slow
def test_doc_ocr_writes_words_per_page_and_reports_a_bad_file(tmp_path):
    doc = render_document(0, "test", 2, "id_card")
    Image.fromarray(doc.image).save(tmp_path / "card.png")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n not really")
    proc = run("doc", "ocr", tmp_path / "card.png", tmp_path / "broken.pdf", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "broken.pdf: not a readable PDF" in proc.stderr.replace("\n", "")
    result = json.loads((tmp_path / "out" / "card.json").read_text())
    (page,) = result["pages"]
    assert page["source"] == "ocr:tesseract" and (page["width"], page["height"]) == (320, 400)
    texts = [w["text"] for w in page["words"]]
    assert "IDENTITY" in texts and doc.entities[-1].text.split()[0] in texts  # the expiry date
    assert set(page["words"][0]) == {"text", "box", "confidence", "line", "block"}
    assert page["ocr"]["psm"] == 3 and any(s.startswith("upscale ×2") for s in page["ocr"]["steps"])  # ≈ 8 px text
    single = run("doc", "ocr", tmp_path / "card.png", "--psm", "6", "--clean", "off", "--upscale", "off")  # JSON on stdout
    report = json.loads(single.stdout)["pages"][0]
    assert single.returncode == 0 and report["words"] and report["ocr"]["steps"] == [] and report["ocr"]["psm"] == 6
    for option, value, message in (("--clean", "flatten,sharpen", "unknown clean-up step(s) sharpen"),
                                   ("--upscale", "9", "upscale must be 'auto', 'off' or a whole factor 1–4"),
                                   ("--reread", "tesseract", "reread must be 'off' or another OCR engine"),
                                   ("--psm", "x", "--psm must be one of Tesseract's page-segmentation modes")):
        bad = cli_in_process("doc", "ocr", tmp_path / "card.png", option, value)
        assert bad.returncode == 2 and message in " ".join(bad.stderr.split()), bad.stderr
    rapid = run("doc", "ocr", tmp_path / "card.png", "--ocr", "rapidocr")
    assert rapid.returncode == 0 and json.loads(rapid.stdout)["pages"][0]["source"] == "ocr:rapidocr", rapid.stderr
    only_bad = cli_in_process("doc", "ocr", tmp_path / "broken.pdf")
    assert only_bad.returncode == 1  # (a missing Tesseract language: tests/documents/test_reader.py)
