"""The web UI in real headless Chromium (Debian's chromium, driven by Playwright): type a query
and see results; drop an audio file and see images."""

import base64
import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page(server):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `bash scripts/bootstrap.sh test` (it apt-get installs it) "
                    "or set CHROMIUM=/path/to/chromium")
    from playwright.sync_api import sync_playwright

    _, _, base = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{base}/#token=s3cret")
        page.wait_for_selector("#status:has-text('items indexed')", timeout=20_000)
        yield page
        browser.close()


@pytest.mark.slow
def test_typing_a_query_shows_results(page):
    page.fill("#q", "a red circle on a beach")
    page.press("#q", "Enter")
    page.wait_for_selector("#status:has-text('result(s)')", timeout=20_000)
    cards = page.locator(".card")
    assert cards.count() == 12
    scores = [float(s) for s in page.locator(".card .score").all_text_contents()]
    assert scores == sorted(scores, reverse=True)
    images = page.locator(".card img")
    assert images.count() > 0 and page.evaluate("document.querySelector('.card img').naturalWidth") > 0


def test_dropping_an_audio_file_shows_images(page, server):
    _, folder, _ = server
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
