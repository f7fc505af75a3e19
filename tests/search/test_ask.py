"""`polymodal ask`: hybrid search picks an index's pages, a LayoutLM QA model reads them, and the
answer comes with its file, page, score and box; without a QA model, the best pages."""

import json
import subprocess
import sys

import pytest

from polymodal.search.ask import ask_index
from polymodal.search.hybrid import Searcher
from polymodal.search.ingest import index_folder
from polymodal.search.store import Store
from polymodal.tasks import Embedder
from polymodal.tasks.documents import DocumentModel
from cli_runs import cli_in_process
from text_files import text_pdf


@pytest.fixture(scope="module")
def docs_index(tmp_path_factory, model_dir):
    root = tmp_path_factory.mktemp("ask")
    folder = root / "files"
    folder.mkdir()
    text_pdf(folder / "invoice-march.pdf", [["ACME Tools Ltd", "Invoice 4471", "Date 2026-03-14", "Total 312.50 EUR"],
                                            ["Terms: payable within 30 days"]])
    text_pdf(folder / "letter.pdf", [["Dear Sir", "Thank you for your letter about the garden fence"]])
    (folder / "notes.txt").write_text("the invoice total is on the first page\n")
    embedder = Embedder.from_checkpoint(model_dir)
    store = Store(root / "idx", embedder.dim, embedder.model_id, str(model_dir))
    index_folder(folder, embedder, store)
    return store, embedder, folder, root / "idx"


def test_ask_reads_the_pages_search_found_and_answers_with_page_and_box(docs_index, qa_dir):
    store, embedder, folder, _ = docs_index
    qa = DocumentModel.from_folder(qa_dir)
    question = "what is the total on invoice 4471?"
    asked = ask_index(Searcher(store, embedder), question, qa, pages=4)
    assert all(p.hit.item.modality in ("pdf", "image") for p in asked.pages)  # notes.txt is no page
    assert asked.best.score == max(p.score for p in asked.pages)  # the surest answer of the pages read wins
    best = ask_index(Searcher(store, embedder), question, qa, pages=1).best  # the page search puts first
    assert best is not None and best.hit.item.file == str(folder / "invoice-march.pdf") and best.hit.item.page == 1
    page_words = "ACME Tools Ltd Invoice 4471 Date 2026-03-14 Total 312.50 EUR".split()
    assert best.answer and set(best.answer.split()) <= set(page_words)
    x0, y0, x1, y1 = best.box
    assert 0 <= x0 <= x1 <= best.width and 0 <= y0 <= y1 <= best.height
    assert 0 <= best.score <= 1
    assert asked.to_json()["answer"]["answer"] == asked.best.answer


def test_without_a_qa_model_ask_says_so_and_shows_the_best_pages(docs_index):
    store, embedder, folder, _ = docs_index
    asked = ask_index(Searcher(store, embedder), "invoice 4471 total")
    assert asked.best is None and "no QA model given" in asked.note
    assert asked.pages[0].hit.item.path == f"{folder / 'invoice-march.pdf'}#page=1"
    with pytest.raises(ValueError, match="the question is empty"):
        ask_index(Searcher(store, embedder), "  ")


def test_ask_command(docs_index, qa_dir):
    _, _, folder, index = docs_index
    run = subprocess.run([sys.executable, "-m", "polymodal.cli", "ask", str(index), "what is the total on invoice 4471?",
                          "--qa", str(qa_dir), "--pages", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert body["answer"]["file"] == str(folder / "invoice-march.pdf") and len(body["answer"]["box"]) == 4
    plain = subprocess.run([sys.executable, "-m", "polymodal.cli", "ask", str(index), "garden fence"],
                           capture_output=True, text=True, timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert plain.returncode == 0 and "no QA model given" in plain.stderr and "letter.pdf" in plain.stdout
    wrong = cli_in_process("ask", index, "total?", "--qa", folder)  # a folder that is no model
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr and str(folder) in wrong.stderr
