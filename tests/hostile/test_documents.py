"""Documents whose pages are each within bounds but together are not: pages are streamed (decoded,
read, handed on), and a document's pixels are bounded in total."""

from bounded import one_line_error, run_bounded
from pdf_files import write_pdf


def many_page_pdf(path, pages: int, side_pt: int, text: str = "x") -> None:
    """A small PDF of ``pages`` pages of ``side_pt``² points sharing one content stream with a line of
    text (so its text layer is read, no OCR)."""
    content = f"BT /F1 24 Tf 100 100 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + b" ".join(f"{5 + k} 0 R".encode() for k in range(pages)) +
               f"] /Count {pages} >>".encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream"]
    objects += [f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {side_pt} {side_pt}] /Contents 4 0 R "
                f"/Resources << /Font << /F1 3 0 R >> >> >>".encode() for _ in range(pages)]
    write_pdf(path, objects)


def test_doc_ocr_streams_pages_so_a_long_document_stays_in_its_memory_bound(tmp_path):
    """120 pages of 3000² pt at 72 dpi: 9 M pixels (27 MB) each, 3.2 GB if every page were decoded
    before any is read; streamed, the command stays under its 3 GiB address-space cap."""
    pdf = tmp_path / "long.pdf"
    many_page_pdf(pdf, 120, 3000)
    assert pdf.stat().st_size < 40_000
    ran = run_bounded("doc", "ocr", pdf, "--dpi", "72", "--out", tmp_path / "out", timeout=300)
    assert ran.returncode == 0, ran.output
    assert '"page": 120,' in (tmp_path / "out" / "long.json").read_text()


def test_a_document_past_its_total_pixel_budget_is_refused_by_page(tmp_path, monkeypatch):
    from polymodal.documents import reader

    pdf = tmp_path / "wide.pdf"
    many_page_pdf(pdf, 6, 1000)  # 1000² pt at 150 dpi: 4.3 M pixels a page
    monkeypatch.setattr(reader, "MAX_KEPT_PIXELS", 10_000_000)
    import pytest

    with pytest.raises(reader.DocumentReadError, match=r"wide.pdf: page 3 takes the document past 10 M pixels in all"):
        reader.read_document(pdf)
    assert len(reader.read_document(pdf, keep_images=False)) == 6  # streamed, the images are not kept


def test_a_pdf_with_a_broken_page_tree_is_one_error_line(tmp_path):
    pdf = tmp_path / "loop.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
                    b"2 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\n"
                    b"trailer << /Root 1 0 R >>\n%%EOF\n")
    ran = run_bounded("doc", "ocr", pdf)
    assert ran.returncode != 0
    one_line_error(ran, "loop.pdf")


def test_index_says_when_it_reads_only_the_first_pages_of_a_long_pdf(tmp_path, tiny_clip):
    folder = tmp_path / "docs"
    folder.mkdir()
    many_page_pdf(folder / "long.pdf", 205, 300)
    ran = run_bounded("index", folder, "--model", tiny_clip, "--out", tmp_path / "idx", timeout=300)
    assert ran.returncode == 0, ran.output
    assert "long.pdf: indexed the first 200 of 205 pages" in " ".join(ran.stderr.split())


def test_doc_ask_over_a_long_pdf_streams_its_pages_and_answers_with_page_and_box(tmp_path):
    """120 pages of 3000² pt (27 MB each as images, 3.2 GB together): `doc ask` reads them one at a
    time under a 3 GiB address-space cap and returns the best answer over all pages, with its page
    and box (the model is untrained: which page wins is not the point, that one does)."""
    import json
    from dataclasses import replace

    import torch

    from polymodal.documents.processor import DocumentProcessor, default_tokenizer
    from polymodal.models.document_tasks import DocumentTaskConfig
    from polymodal.registry import build, preset
    from polymodal.tasks.documents import save_labels
    from polymodal.weights.loading import save

    torch.manual_seed(0)
    tiny = preset("layoutlmv3-tiny")
    save(build(DocumentTaskConfig(tiny, "qa", 1)), tmp_path / "small-vocab", DocumentProcessor.for_model(tiny, default_tokenizer()))
    save_labels(tmp_path / "small-vocab", "qa", ["span"])
    trunk = replace(tiny, bert=replace(tiny.bert, vocab_size=30522))  # the tokenizer's
    save(build(DocumentTaskConfig(trunk, "qa", 1)), tmp_path / "qa", DocumentProcessor.for_model(trunk, default_tokenizer()))
    save_labels(tmp_path / "qa", "qa", ["span"])
    pdf = tmp_path / "long.pdf"
    many_page_pdf(pdf, 120, 3000, text="Total due 42.50 by March")
    ran = run_bounded("doc", "ask", tmp_path / "qa", pdf, "what is the total?", "--dpi", "72", timeout=300)
    assert ran.returncode == 0, ran.output
    answer = json.loads(ran.stdout)
    assert 1 <= answer["page"] <= 120 and len(answer["box"]) == 4 and 0 <= answer["score"] <= 1
    assert answer["answer"] and set(answer["answer"].split()) <= {"Total", "due", "42.50", "by", "March"}
    # A folder whose tokenizer has ids past the model's embedding is refused when loaded, by name.
    mismatched = run_bounded("doc", "ask", tmp_path / "small-vocab", pdf, "what is the total?", timeout=120)
    assert mismatched.returncode == 2 and one_line_error(mismatched, "small-vocab", "30522 tokens", "vocabulary 200")
