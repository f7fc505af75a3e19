"""The web UI in real headless Chromium (Debian's chromium, driven by Playwright): type a query
and see results (why each matched, its words marked, a video's moment), "no good match", drop an
audio file and see images, ask the documents and see the answer's box on its page."""

import base64
import os
import shutil

import pytest

from polymodal.search.ingest import index_folder
from polymodal.search.store import Store
from polymodal.tasks import Embedder
from conftest import _serve
from text_files import srt, text_pdf, video

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright's sync API allows one driver at a time)."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `bash scripts/bootstrap.sh test` (it apt-get installs it) "
                    "or set CHROMIUM=/path/to/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def _open(browser, base):
    page = browser.new_page()
    page.goto(f"{base}/#token=s3cret")
    page.wait_for_selector("#status:has-text('items indexed')", timeout=20_000)
    return page


@pytest.fixture(scope="module")
def page(browser, server):
    return _open(browser, server[2])


@pytest.fixture(scope="module")
def docs_page(browser, tmp_path_factory, model_dir, qa_dir):
    """The UI of a server started with --qa over an invoice PDF and a 12 s video with subtitles."""
    root = tmp_path_factory.mktemp("docs-ui")
    folder = root / "files"
    folder.mkdir()
    text_pdf(folder / "invoice-march.pdf", [["ACME Tools Ltd", "Invoice 4471", "Total 312.50 EUR"]])
    video(folder / "walk.mp4", 12)
    (folder / "walk.srt").write_text(srt([(6, 8, "a red kite lands on the fence")]))
    embedder = Embedder.from_checkpoint(model_dir)
    index_folder(folder, embedder, Store(root / "idx", embedder.dim, embedder.model_id, str(model_dir)))
    proc, client, base = _serve(root / "idx", "--token", "s3cret", "--qa", str(qa_dir))
    try:
        yield _open(browser, base)
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_typing_a_query_shows_results(page):
    page.uncheck("#good")  # the nearest items, however weak
    page.fill("#q", "a red circle on a beach")
    page.press("#q", "Enter")
    page.wait_for_selector("#status:has-text('result(s)')", timeout=20_000)
    cards = page.locator(".card")
    assert cards.count() == 12
    assert [int(r) for r in cards.evaluate_all("cards => cards.map(c => c.dataset.rank)")] == list(range(1, 13))
    relevance = [float(s) for s in page.locator(".card .score").all_text_contents()]
    assert all(0 <= r <= 1 for r in relevance)
    assert page.locator(".card .why").count() == 12
    images = page.locator(".card img")
    assert images.count() > 0 and page.evaluate("document.querySelector('.card img').naturalWidth") > 0
    page.check("#good")


def test_words_are_marked_and_nothing_relevant_says_no_good_match(page):
    page.select_option("#mode", "words")
    page.fill("#q", "hexagon")
    page.press("#q", "Enter")
    page.wait_for_selector("#status:has-text('for “hexagon”')", timeout=20_000)
    assert page.locator(".card[data-modality=text] .snippet mark").first.inner_text().lower() == "hexagon"
    assert "words: hexagon" in page.locator(".card .why").first.inner_text()
    page.fill("#q", "zzqxv")
    page.press("#q", "Enter")
    page.wait_for_selector("#status:has-text('no good match for')", timeout=20_000)
    assert page.locator(".card").count() == 0
    page.select_option("#mode", "hybrid")


def test_dropping_an_audio_file_shows_images(page, server):
    _, folder, _ = server
    page.uncheck("#good")  # the random test model's nearest images, however weak
    for box in page.locator("#filters input").all():  # images only
        if box.get_attribute("value") != "image":
            box.uncheck()
    data = base64.b64encode((folder / "scene00002.wav").read_bytes()).decode()
    transfer = page.evaluate_handle("""([name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type: "audio/wav" }));
        return dt;
    }""", ["sound.wav", data])
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#status:has-text('for sound.wav')", timeout=20_000)
    modalities = page.locator(".card").evaluate_all("cards => cards.map(c => c.dataset.modality)")
    assert len(modalities) == 4 and set(modalities) == {"image"}


def test_a_bad_drop_shows_the_servers_message(page):
    transfer = page.evaluate_handle("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array([0, 1, 2, 3, 255])], "blob.bin"));
        return dt;
    }""")
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#status.error", timeout=20_000)
    assert "blob.bin" in page.inner_text("#status")


def test_the_token_is_taken_once_and_kept_out_of_the_address_bar(page, server):
    _, _, base = server
    assert page.url == f"{base}/" and "s3cret" not in page.evaluate("location.href")
    page.reload()  # the tab remembers it (sessionStorage), the history entry never held it
    page.wait_for_selector("#status:has-text('items indexed')", timeout=20_000)
    assert page.evaluate("history.length") <= 2 and "token" not in page.url


@pytest.mark.slow
def test_asking_shows_the_answer_boxed_on_its_page(docs_page):
    docs_page.fill("#ask-q", "what is the total on invoice 4471?")
    docs_page.press("#ask-q", "Enter")
    docs_page.wait_for_selector("#status:has-text('answered from')", timeout=60_000)
    assert docs_page.inner_text("#answer .found").strip()
    assert "invoice-march.pdf, page 1" in docs_page.inner_text("#answer")
    docs_page.wait_for_function("document.querySelector('#answer .pagebox img').naturalWidth > 0", timeout=20_000)
    box = docs_page.locator("#answer .pagebox .box").bounding_box()
    frame = docs_page.locator("#answer .pagebox").bounding_box()
    assert box["width"] > 0 and frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1


def test_a_video_moment_starts_where_its_words_were_said(docs_page):
    docs_page.select_option("#mode", "words")
    docs_page.fill("#q", "kite")
    docs_page.press("#q", "Enter")
    docs_page.wait_for_selector("#status:has-text('for “kite”')", timeout=20_000)
    card = docs_page.locator(".card[data-modality=video]")
    assert card.count() == 1 and card.locator(".moment").inner_text() == "0:04–0:08"
    assert card.locator("video").get_attribute("src").endswith("#t=4,8")
