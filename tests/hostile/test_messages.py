"""What commands print about files from outside: a name holding rich markup or `[/` is printed as it
is (not styled away, not a crash), control and right-to-left characters cannot forge lines, an error
line is one line however long, and results of inputs that share a stem never overwrite each other."""

from bounded import one_line_error, run_bounded
from PIL import Image, ImageDraw


def _page(path, text="INVOICE 4471"):
    im = Image.new("RGB", (600, 200), "white")
    ImageDraw.Draw(im).text((20, 80), text, fill="black")
    im.save(path)
    return path


def test_markup_and_control_characters_in_names_are_printed_as_text(tmp_path, tiny_clip):
    bad = tmp_path / "[red]secret[[" / "x.png"  # a folder named with markup: the path holds "[/"
    bad.parent.mkdir()
    bad.write_bytes(b"not a picture")
    forged = tmp_path / "a\nerror: forged\u202egnp.png"
    forged.write_bytes(b"not a picture either")
    Image.new("RGB", (32, 32)).save(tmp_path / "ok.png")
    long = tmp_path / ("x" * 200 + ".png")
    long.write_bytes(b"nope")
    ran = run_bounded("embed", bad, forged, long, tmp_path / "ok.png", "--checkpoint", tiny_clip, "--out", tmp_path / "o")
    assert ran.returncode == 1
    one_line_error(ran, "[red]secret[[/x.png")
    failed = [line for line in ran.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 3, ran.stderr  # one line each: the newline in a name is shown as \n, the long one unwrapped
    assert any("a\\nerror: forged\\u202egnp.png" in line for line in failed)
    assert not any(line.startswith("error: forged") for line in ran.stderr.splitlines())
    assert any(("x" * 200) in line for line in failed)


def test_doc_ocr_results_of_inputs_that_share_a_stem_do_not_overwrite_each_other(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _page(tmp_path / "a" / "scan.png", "FIRST 1111"), _page(tmp_path / "b" / "scan.png", "SECOND 2222")
    ran = run_bounded("doc", "ocr", first, second, "--out", tmp_path / "out")
    assert ran.returncode == 0, ran.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["scan.json", "scan.png.json"]
    texts = [(tmp_path / "out" / n).read_text() for n in written]
    assert '"file": "' + str(first) in texts[0] and '"file": "' + str(second) in texts[1]


def test_a_pdf_whose_page_tree_loops_is_reported_and_the_batch_goes_on(tmp_path):
    loop = tmp_path / "loop.pdf"
    loop.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
                     b"2 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\n"
                     b"trailer << /Root 1 0 R >>\n%%EOF\n")
    good = _page(tmp_path / "good.png")
    ran = run_bounded("doc", "ocr", loop, good, "--out", tmp_path / "out")
    assert "Traceback" not in ran.output, ran.output
    assert (tmp_path / "out" / "good.json").is_file()
    if ran.returncode != 0 or "loop.pdf" in ran.stderr:
        one_line_error(ran, "loop.pdf")


def test_an_ocr_error_names_the_file(tmp_path):
    page = _page(tmp_path / "page.png")
    ran = run_bounded("doc", "ocr", page, "--lang", "zzz")
    assert ran.returncode != 0
    one_line_error(ran, "page.png: tesseract has no language 'zzz'")
