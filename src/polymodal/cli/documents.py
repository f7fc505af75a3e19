"""``polymodal doc ocr | extract | ask | classify``: pages read, key–values drawn, questions answered, classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import console, fail, printable, problem, safe


doc_app = typer.Typer(no_args_is_help=True, help="Documents: OCR, key–value extraction, questions, classes (LayoutLM).")


def _doc_pages(file: Path, ocr, dpi: float):
    """The file's pages, one at a time (:func:`~polymodal.documents.iter_document`): each page's image
    is dropped once the caller has moved on, so a long document never sits in memory whole."""
    from ..documents import iter_document

    return iter_document(file, ocr=ocr, dpi=dpi)


def _ocr(engine: str, lang: str, psm: str, clean: str, upscale: str, reread: str = "off"):
    """The OCR engine with the options the user changed from their defaults (another engine than
    Tesseract refuses them by name), or a clear failure."""
    from ..documents import OCRError, ocr_engine

    if psm != "auto" and not (psm.isdigit() and 0 <= int(psm) <= 13):
        fail(f"--psm must be one of Tesseract's page-segmentation modes 0–13 or auto, got {psm}")
    options = {name: value for name, value, default in
               (("lang", lang, "eng"), ("psm", psm, "auto"), ("clean", clean, "auto"), ("upscale", upscale, "auto"),
                ("reread", reread, "off"))
               if value != default}
    try:
        return ocr_engine(engine, **options)
    except (OCRError, ValueError) as e:
        fail(str(e))


OCR_OPTION = Annotated[str, typer.Option("--ocr", help="OCR engine for pages without a text layer: tesseract or rapidocr")]
LANG_OPTION = Annotated[str, typer.Option(help="Tesseract language(s), e.g. eng or eng+deu")]
PSM_OPTION = Annotated[str, typer.Option(help="Tesseract page segmentation: auto (chosen per page by the "
                                              "engine's confidence), or a mode (3 automatic, 6 one block, 11 sparse)")]
CLEAN_OPTION = Annotated[str, typer.Option(help="page clean-up before Tesseract: auto, off, or steps "
                                                "(crop,flatten,contrast,deskew,upscale,binarise)")]
UPSCALE_OPTION = Annotated[str, typer.Option(help="enlarge small text before Tesseract: auto, off, or a factor 1–4")]
REREAD_OPTION = Annotated[str, typer.Option(help="read Tesseract's weak lines (dot leaders, tables) again with "
                                                 "another engine: off or rapidocr")]
DPI_OPTION = Annotated[float, typer.Option(help="PDF rendering resolution")]


BACKEND_OPTION = Annotated[str, typer.Option(help="run the model with torch, or an export of it under onnxruntime "
                                                  "or openvino (made and verified once, then cached)")]


def _document_model(folder: Path, task: str, backend: str = "torch"):
    from ..export.onnx import ExportError
    from ..tasks.documents import DocumentModel

    try:
        model = DocumentModel.from_folder(folder, backend=backend)
        model.require(task)
    except (FileNotFoundError, TypeError, ValueError, ExportError) as e:
        fail(str(e))
    return model


@doc_app.command("ocr")
def doc_ocr_cmd(
    files: Annotated[list[Path], typer.Argument(help="PDFs or page images (PNG, JPEG, multi-page TIFF)")],
    out: Annotated[Optional[Path], typer.Option(help="a .json file (one input) or a folder (NAME.json per input); "
                                                      "default: print JSON")] = None,
    engine: OCR_OPTION = "tesseract", lang: LANG_OPTION = "eng", psm: PSM_OPTION = "auto",
    clean: CLEAN_OPTION = "auto", upscale: UPSCALE_OPTION = "auto", reread: REREAD_OPTION = "off",
    dpi: DPI_OPTION = 150,
    text_layer: Annotated[bool, typer.Option(help="use a PDF page's own text when it has some")] = True,
    max_pages: Annotated[int, typer.Option(help="pages read per file")] = 200,
) -> None:
    """Words, boxes (pixels of the page at --dpi), confidences, line and block ids, per page. A bad
    file is reported and the others are still read."""
    from ..documents import DocumentReadError, OCRError, read_document

    if not 36 <= dpi <= 600 or max_pages < 1:
        fail("--dpi must be 36–600 and --max-pages ≥ 1")
    if out is not None and len(files) > 1 and out.suffix == ".json":
        fail(f"{len(files)} inputs: --out must be a folder, not {out}")
    ocr = _ocr(engine, lang, psm, clean, upscale, reread)
    if out is not None and out.exists() and not out.is_dir() and out.suffix != ".json":
        fail(f"--out {out} exists and is not a folder")
    if out is not None and out.suffix == ".json" and not out.parent.is_dir():
        fail(f"--out {out}: the folder {out.parent} does not exist")
    failed, targets = 0, set()
    for file in files:
        try:
            pages = read_document(file, ocr=ocr, dpi=dpi, max_pages=max_pages, text_layer=text_layer, keep_images=False)
        except (DocumentReadError, OCRError, ValueError, OSError, RuntimeError) as e:  # e.g. pdfium's own errors
            problem("skipped", e if str(file) in str(e) else f"{file}: {e}")
            failed += 1
            continue
        result = json.dumps({"file": str(file), "pages": [p.to_json() for p in pages]}, ensure_ascii=False)
        if out is None:
            print(result)
            continue
        target = out if out.suffix == ".json" else result_file(out, file, targets)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result)
        words = sum(len(p.words) for p in pages)
        console.print(f"{safe(file)}: {len(pages)} page(s), {words} words → {safe(target)}", highlight=False)
    if failed == len(files):
        raise typer.Exit(1)


@doc_app.command("extract")
def doc_extract_cmd(
    model: Annotated[Path, typer.Argument(help="a model folder trained with objective.kind doc_entities")],
    inputs: Annotated[list[Path], typer.Argument(help="PDFs or page images, or folders of them (searched recursively)")],
    out: Annotated[Optional[Path], typer.Option(help="one input: write the JSON here (default: print it); several "
                                                      "or a folder: a folder for NAME.json per document and fields.csv")] = None,
    draw: Annotated[Optional[Path], typer.Option(help="PNG with the entities and links over the page "
                                                       "(NAME-pN.png per page for several pages; one input only)")] = None,
    engine: OCR_OPTION = "tesseract", lang: LANG_OPTION = "eng", psm: PSM_OPTION = "auto",
    clean: CLEAN_OPTION = "auto", upscale: UPSCALE_OPTION = "auto", reread: REREAD_OPTION = "off",
    dpi: DPI_OPTION = 150,
    backend: BACKEND_OPTION = "torch",
) -> None:
    """Key–value pairs of each page: ``fields`` (key, value, their boxes, confidence), and every
    entity (header / question / answer) with the links the model found. Over several documents or a
    folder, one JSON per document and one ``fields.csv`` (file, page, key, value, …) that a
    spreadsheet opens; a bad file is reported and the others are still read."""
    from ..documents import DocumentReadError, OCRError
    from ..documents.fields_csv import FieldsCSV
    from ..documents.reader import page_count

    ocr = _ocr(engine, lang, psm, clean, upscale, reread)
    files = _document_files(inputs)
    batch = len(files) > 1 or any(item.is_dir() for item in inputs)
    if batch and (out is None or out.suffix == ".json"):
        fail(f"{len(files)} document(s): --out must name a folder for their JSON files and fields.csv")
    if batch and draw is not None:
        fail("--draw takes one input document")
    for option, target in (("--out", None if batch else out), ("--draw", draw)):
        if target is not None and not target.parent.is_dir():
            fail(f"{option} {target}: the folder {target.parent} does not exist")
    if batch and out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    doc_model = _document_model(model, "entities", backend)
    if not batch:
        try:
            several = page_count(files[0]) > 1 if draw is not None else False
            result = _extract_document(doc_model, files[0], ocr, dpi, draw, several)
        except (DocumentReadError, OCRError, ValueError, RuntimeError) as e:
            fail(str(e))
        text = json.dumps(result, ensure_ascii=False, indent=1)
        if out is None:
            print(text)
        else:
            out.write_text(text)
            console.print(f"{sum(len(p['fields']) for p in result['pages'])} field(s) → {safe(out)}", highlight=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    failed, taken = 0, set()
    with FieldsCSV(out / "fields.csv") as table:
        for file in files:
            try:
                result = _extract_document(doc_model, file, ocr, dpi, None, False)
            except (DocumentReadError, OCRError, ValueError, OSError, RuntimeError) as e:  # e.g. pdfium's own errors
                problem("skipped", e if str(file) in str(e) else f"{file}: {e}")
                failed += 1
                continue
            target = result_file(out, file, taken)
            target.write_text(json.dumps(result, ensure_ascii=False, indent=1))
            table.add(str(file), result)
            console.print(f"{safe(file)}: {sum(len(p['fields']) for p in result['pages'])} field(s) → {safe(target)}",
                          highlight=False)
    console.print(f"{len(files) - failed} document(s), {table.rows} field(s) → {safe(out / 'fields.csv')}", highlight=False)
    if failed == len(files):
        raise typer.Exit(1)


def _document_files(inputs: list[Path]) -> list[Path]:
    """The files named and the PDFs and images under the folders named (sorted), or a clear failure."""
    from ..modalities.image import IMAGE_SUFFIXES

    files = []
    for item in inputs:
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in (*IMAGE_SUFFIXES, ".pdf"))
        elif item.is_file():
            files.append(item)
        else:
            fail(f"{item}: no such file or folder")
    if not files:
        fail("no PDFs or images found")
    return files


def _extract_document(doc_model, file: Path, ocr, dpi: float, draw: Path | None, several: bool) -> dict:
    """``doc extract``'s JSON for one document, its pages read one at a time."""
    result = {"file": str(file), "pages": []}
    for page in _doc_pages(file, ocr, dpi):
        _extract_page(doc_model, page, result, draw, several)
    return result


def _extract_page(doc_model, page, result: dict, draw: Path | None, several: bool) -> None:
    """One page's entities, links and key–value fields into ``result`` (and its drawing)."""
    from ..documents.draw import draw_entities
    from ..tasks.documents import DocumentPage

    found = doc_model.extract(DocumentPage.of(page))
    by_id = {e["id"]: e for e in found["entities"]}
    fields = [{"key": by_id[link["question"]]["text"], "value": by_id[link["answer"]]["text"],
               "key_box": by_id[link["question"]]["box"], "value_box": by_id[link["answer"]]["box"],
               "confidence": round(link["score"] * min(by_id[link["question"]]["confidence"],
                                                       by_id[link["answer"]]["confidence"]), 4)}
              for link in found["links"]]
    result["pages"].append({"page": page.number, "width": page.width, "height": page.height, "source": page.source,
                            "fields": fields, "entities": found["entities"], "links": found["links"]})
    if draw is not None:
        target = draw.with_name(f"{draw.stem}-p{page.number}{draw.suffix or '.png'}") if several else draw
        draw_entities(page.image, found["entities"], found["links"], target)


@doc_app.command("ask")
def doc_ask_cmd(
    model: Annotated[Path, typer.Argument(help="a model folder trained with objective.kind doc_qa")],
    file: Annotated[Path, typer.Argument(help="a PDF or page image")],
    question: Annotated[str, typer.Argument(help='e.g. "what is the total?"')],
    engine: OCR_OPTION = "tesseract", lang: LANG_OPTION = "eng", psm: PSM_OPTION = "auto",
    clean: CLEAN_OPTION = "auto", upscale: UPSCALE_OPTION = "auto", reread: REREAD_OPTION = "off",
    dpi: DPI_OPTION = 150,
    backend: BACKEND_OPTION = "torch",
) -> None:
    """The answer (words of the page), its score and where it is: page and pixel box (JSON)."""
    from ..documents import DocumentReadError, OCRError
    from ..tasks.documents import DocumentPage

    ocr = _ocr(engine, lang, psm, clean, upscale, reread)
    doc_model = _document_model(model, "qa", backend)
    if not question.strip():
        fail("the question is empty")
    room = doc_model.processor.max_tokens // 2  # the page's words need the rest of each window
    asked = len(doc_model.processor.tokenizer.encode(question, add_special_tokens=False).ids)
    if asked > room:
        fail(f"the question is {asked} tokens; at most {room} fit beside a page's words in this model's windows")
    try:
        answers = [{**doc_model.ask(DocumentPage.of(p), question), "page": p.number}
                   for p in _doc_pages(file, ocr, dpi)]
    except (DocumentReadError, OCRError, ValueError, RuntimeError) as e:
        fail(str(e))
    best = max(answers, key=lambda a: a["score"])
    print(json.dumps({"file": str(file), "question": question, **best}, ensure_ascii=False))


def result_file(out: Path, file: Path, taken: set) -> Path:
    """``out/STEM.json`` for ``file``; inputs that share a stem (a.pdf, a.png, x/a.pdf) get
    ``STEM.pdf.json``, then ``STEM.pdf-2.json``…: no result overwrites another of the same run."""
    target = out / f"{file.stem}.json"
    k = 1
    while target in taken:
        k += 1
        target = out / (f"{file.name}.json" if k == 2 else f"{file.name}-{k - 1}.json")
    taken.add(target)
    return target


@doc_app.command("classify")
def doc_classify_cmd(
    model: Annotated[Path, typer.Argument(help="a model folder trained with objective.kind doc_classify")],
    inputs: Annotated[list[Path], typer.Argument(help="folders (searched recursively) or files")],
    engine: OCR_OPTION = "tesseract", lang: LANG_OPTION = "eng", psm: PSM_OPTION = "auto",
    clean: CLEAN_OPTION = "auto", upscale: UPSCALE_OPTION = "auto", reread: REREAD_OPTION = "off",
    dpi: DPI_OPTION = 150,
    backend: BACKEND_OPTION = "torch",
) -> None:
    """One line per file: path, class, score (class probabilities averaged over its pages). A bad
    file gets an error line and the others go on."""
    from ..documents import DocumentReadError, OCRError
    from ..tasks.documents import DocumentPage

    ocr = _ocr(engine, lang, psm, clean, upscale, reread)
    doc_model = _document_model(model, "classify", backend)
    files = _document_files(inputs)
    failed = 0
    for file in files:
        scores, count = {}, 0
        try:
            for p in _doc_pages(file, ocr, dpi):
                count += 1
                for c, v in doc_model.classify(DocumentPage.of(p))["scores"].items():
                    scores[c] = scores.get(c, 0.0) + v
        except (DocumentReadError, OCRError, ValueError, OSError, RuntimeError) as e:  # e.g. pdfium's own errors
            problem("skipped", e if str(file) in str(e) else f"{file}: {e}")
            failed += 1
            continue
        scores = {c: v / count for c, v in scores.items()}  # class probabilities averaged over the pages
        best = max(scores, key=scores.get)
        print(f"{printable(file)}\t{printable(best)}\t{scores[best]:.3f}")
    if failed == len(files):
        raise typer.Exit(1)
