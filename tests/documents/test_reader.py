"""Reading documents with the real Tesseract and pypdfium2: rendered world pages, a multi-page
TIFF, a PDF with a text layer and an image-only PDF; bad files are refused by name."""

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from polymodal.world.documents import render_document
from polymodal.documents import DocumentReadError, OCRError, TesseractOCR, ocr_engine, read_document


def _recall(expected: list[str], got: list[str]) -> float:
    left = Counter(got)
    hit = 0
    for w in expected:
        if left[w] > 0:
            hit, left[w] = hit + 1, left[w] - 1
    return hit / len(expected)


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def world_png(tmp_path_factory):
    doc = render_document(0, "test", 3, "invoice")
    path = tmp_path_factory.mktemp("docs") / "invoice.png"
    Image.fromarray(doc.image).save(path)
    return doc, path


def test_tesseract_reads_a_rendered_page_with_words_boxes_lines(world_png):
    doc, path = world_png
    (page,) = read_document(path)
    assert page.source == "ocr:tesseract" and (page.width, page.height) == (doc.image.shape[1], doc.image.shape[0])
    assert _recall(doc.words, page.texts) >= 0.95
    # Each ground-truth word read exactly has a box over it (IoU with the glyph-tight box).
    truth = {}
    for w, b in zip(doc.words, doc.boxes):
        truth.setdefault(w, []).append(b)
    ious = [max(_iou(w.box, b) for b in truth[w.text]) for w in page.words if w.text in truth]
    assert np.median(ious) > 0.6 and min(ious) > 0.3
    assert all(0 <= w.confidence <= 100 for w in page.words)
    # Lines follow the page: words on one ground-truth line share an OCR line id.
    by_text = {w.text: w.line for w in page.words}
    key, value = doc.entities[2], doc.entities[3]  # "Invoice No:" and its value, one line
    assert {by_text[doc.words[i]] for i in key.words + value.words if doc.words[i] in by_text} == {
        by_text[doc.words[key.words[0]]]}
    grid = page.grid_boxes()
    assert grid.dtype == np.int64 and grid.min() >= 0 and grid.max() <= 1000


def test_options_reach_tesseract_and_a_missing_language_is_named(world_png):
    _, path = world_png
    sparse = read_document(path, ocr=TesseractOCR(psm=11))[0]
    assert len(sparse.words) > 5
    with pytest.raises(OCRError, match="no language 'xyz'"):
        read_document(path, ocr=TesseractOCR(lang="xyz"))
    with pytest.raises(ValueError, match="page-segmentation mode must be 'auto' or 0–13"):
        TesseractOCR(psm=14)


def test_rapidocr_is_a_second_engine_behind_the_same_interface(world_png, tmp_path):
    doc, path = world_png
    (page,) = read_document(path, ocr=ocr_engine("rapidocr"))
    assert page.source == "ocr:rapidocr" and _recall(doc.words, page.texts) >= 0.8
    truth = {}
    for w, b in zip(doc.words, doc.boxes):
        truth.setdefault(w, []).append(b)
    ious = [max(_iou(w.box, b) for b in truth[w.text]) for w in page.words if w.text in truth]
    assert np.median(ious) > 0.6  # word boxes from its per-character boxes, on the page's own pixels
    assert len({w.line for w in page.words}) > 5 and all(0 <= w.confidence <= 100 for w in page.words)
    Image.new("RGB", (300, 200), "white").save(tmp_path / "blank.png")
    assert read_document(tmp_path / "blank.png", ocr=ocr_engine("rapidocr"))[0].words == []
    with pytest.raises(ValueError, match="'rapidocr' has no option 'psm'"):
        ocr_engine("rapidocr", psm=6)


def test_a_thin_strip_is_not_upscaled_to_gigapixels(tmp_path):
    """A 20,000 × 5 px page passes the reader's pixel cap; bringing it to 800 rows would make it
    16 × 10⁹ pixels. The factor stays within ×4, 16 M pixels and Tesseract's 32,767 px sides, and
    the page reads as empty."""
    from polymodal.documents.cleanup import MAX_UPSCALED_PIXELS, bounded_factor
    from polymodal.documents.ocr import upscale_factor

    for w, h in ((20_000, 5), (4_000, 3_000), (320, 400), (1, 1), (100_000, 1)):
        for f in (upscale_factor(w, h, 800), bounded_factor(w, h, 16 / 3)):
            assert 1 <= f <= 4 and (f == 1 or (w * h * f * f <= MAX_UPSCALED_PIXELS and max(w, h) * f <= 32_767))
    assert upscale_factor(320, 400, 800) == 2 and upscale_factor(320, 400, 1200) == 3
    Image.new("RGB", (20_000, 5), "white").save(tmp_path / "strip.png")
    assert read_document(tmp_path / "strip.png")[0].words == []


def test_an_image_with_no_text_is_an_empty_page(tmp_path):
    Image.new("RGB", (300, 200), "white").save(tmp_path / "blank.png")
    (page,) = read_document(tmp_path / "blank.png")
    assert page.words == [] and page.grid_boxes().shape == (0, 4)


def test_multi_page_tiff_and_an_unreadable_page(tmp_path):
    a, b = (Image.fromarray(render_document(0, "test", i, "receipt").image) for i in (1, 2))
    a.save(tmp_path / "two.tif", save_all=True, append_images=[b])
    pages = read_document(tmp_path / "two.tif")
    assert [p.number for p in pages] == [1, 2] and all(len(p.words) > 5 for p in pages)
    data = (tmp_path / "two.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) - 20_000])  # page 2's pixels cut short
    with pytest.raises(DocumentReadError, match=r"cut.tif: cannot decode page 2"):
        read_document(tmp_path / "cut.tif")


def test_pdf_text_layer_is_used_and_an_image_only_pdf_is_ocred(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4, 5))
    fig.text(0.1, 0.9, "Invoice No: INV-4821")
    fig.text(0.1, 0.8, "Total: 99.50")
    fig.savefig(tmp_path / "text.pdf")
    plt.close(fig)
    (page,) = read_document(tmp_path / "text.pdf", dpi=100)
    assert page.source == "text-layer"
    assert page.texts == ["Invoice", "No:", "INV-4821", "Total:", "99.50"]
    assert [w.line for w in page.words] == [0, 0, 0, 1, 1]
    first, total = page.words[0].box, page.words[3].box
    assert 0.05 * page.width < first[0] < 0.15 * page.width  # placed at x = 0.1 of the page
    assert first[1] < total[1] and 0.05 * page.height < first[3] < 0.15 * page.height  # top-left origin
    doc = render_document(0, "test", 5, "form")
    Image.fromarray(doc.image).save(tmp_path / "scan.pdf", resolution=72)
    (scan,) = read_document(tmp_path / "scan.pdf", dpi=144)
    assert scan.source == "ocr:tesseract" and _recall(doc.words, scan.texts) >= 0.9
    forced = read_document(tmp_path / "text.pdf", dpi=150, text_layer=False)[0]
    assert forced.source == "ocr:tesseract" and "INV-4821" in forced.texts


def test_a_pdfs_pages_are_ocred_side_by_side_in_order(tmp_path, monkeypatch):
    """Tesseract reads a document's pages in parallel processes (one per core); the pages come back
    in order, with the words a one-at-a-time read gives. A text-layer page between them is not OCR'd."""
    import threading

    docs = [render_document(0, "test", i) for i in range(4)]
    images = [Image.fromarray(d.image) for d in docs]
    images[0].save(tmp_path / "four.pdf", save_all=True, append_images=images[1:], resolution=72)
    engine = TesseractOCR()
    engine.page_workers = 3
    seen, call = set(), engine.__class__.read
    monkeypatch.setattr(engine.__class__, "read", lambda self, im: seen.add(threading.get_ident()) or call(self, im))
    side_by_side = read_document(tmp_path / "four.pdf", ocr=engine, dpi=72)
    assert len(seen) > 1  # more than one thread ran Tesseract
    engine.page_workers = 1
    one_by_one = read_document(tmp_path / "four.pdf", ocr=engine, dpi=72)
    assert [p.number for p in side_by_side] == [1, 2, 3, 4]
    assert [p.texts for p in side_by_side] == [p.texts for p in one_by_one]
    assert all(_recall(d.words, p.texts) >= 0.9 for d, p in zip(docs, side_by_side))


def test_bad_documents_are_refused_by_name(tmp_path):
    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    with open(tmp_path / "locked.pdf", "wb") as f:
        writer.write(f)
    with pytest.raises(DocumentReadError, match="locked.pdf: the PDF is encrypted"):
        read_document(tmp_path / "locked.pdf")
    with open(tmp_path / "empty.pdf", "wb") as f:
        pypdf.PdfWriter().write(f)
    with pytest.raises(DocumentReadError, match="empty.pdf: not a readable PDF: it has no pages or is damaged"):
        read_document(tmp_path / "empty.pdf")
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(DocumentReadError, match="zero.png: the file is empty"):
        read_document(tmp_path / "zero.png")
    (tmp_path / "notes.png").write_bytes(b"this is not an image")
    with pytest.raises(DocumentReadError, match="notes.png: not a readable image or PDF"):
        read_document(tmp_path / "notes.png")
    Image.new("RGB", (400, 300), "white").save(tmp_path / "big.png")
    with pytest.raises(DocumentReadError, match=r"big.png: page 1 is 400×300 pixels, over the 0.1 M pixel limit"):
        read_document(tmp_path / "big.png", max_pixels=100_000)
    writer = pypdf.PdfWriter()
    writer.add_blank_page(14000, 14000)  # points: 194 × 194 inches
    with open(tmp_path / "huge.pdf", "wb") as f:
        writer.write(f)
    with pytest.raises(DocumentReadError, match=r"huge.pdf: page 1 would render at 29167×29167 pixels"):
        read_document(tmp_path / "huge.pdf")


def _scanned_pdf(path, image: Image.Image, layer_lines: list[str]) -> None:
    """A one-page PDF as a scanner with its own OCR writes it: the page as an image, and over it an
    invisible text layer (render mode 3) holding ``layer_lines``, written here by hand."""
    import zlib

    grey = image.convert("L")
    w, h = grey.size
    pixels = zlib.compress(grey.tobytes())
    text = b"".join(b"BT 3 Tr /F1 8 Tf 4 %d Td (%s) Tj ET\n" % (h - 10 * (i + 1), line.encode("latin-1"))
                    for i, line in enumerate(layer_lines))
    content = b"q %d 0 0 %d 0 0 cm /Im0 Do Q\n" % (w, h) + text
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R /Resources "
               b"<< /XObject << /Im0 5 0 R >> /Font << /F1 6 0 R >> >> >>" % (w, h),
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
               b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 "
               b"/Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (w, h, len(pixels), pixels),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def test_a_text_layer_spelled_letter_by_letter_is_read_by_ocr_instead_and_says_so(tmp_path):
    doc = render_document(0, "test", 6, "invoice")
    spelled = [" ".join(" ".join(word) for word in doc.words[i:i + 6]) for i in range(0, len(doc.words), 6)]
    _scanned_pdf(tmp_path / "spelled.pdf", Image.fromarray(doc.image), spelled)
    raw = read_document(tmp_path / "spelled.pdf", dpi=144, ocr=TesseractOCR())[0]
    assert raw.source == "ocr:tesseract" and "one letter long" in raw.ocr["text_layer_refused"]
    assert _recall(doc.words, raw.texts) >= 0.9 and "text_layer_refused" in raw.to_json()["ocr"]
    # The same page with an honest invisible layer keeps it: its words, no OCR.
    lines = [" ".join(doc.words[i:i + 6]) for i in range(0, len(doc.words), 6)]
    _scanned_pdf(tmp_path / "honest.pdf", Image.fromarray(doc.image), lines)
    kept = read_document(tmp_path / "honest.pdf", dpi=144)[0]
    assert kept.source == "text-layer" and kept.texts == " ".join(lines).split() and kept.ocr is None


def test_what_makes_a_text_layer_implausible():
    from polymodal.documents.reader import implausible_text_layer

    prose = "the total of the March invoice is due within thirty days of receipt".split() * 3
    assert implausible_text_layer(prose) is None
    assert implausible_text_layer(list("abc")) is None  # too few words to judge
    assert "one letter long" in implausible_text_layer(list("thetotalofthemarchinvoice"))
    assert "look like words" in implausible_text_layer(["xqzt", "kwrp", "bcdf", "zzkq", "pprt"] * 5)
    assert "no Unicode mapping" in implausible_text_layer(prose, unmapped=40)
    assert implausible_text_layer(prose, unmapped=2) is None
