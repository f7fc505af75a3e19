"""Issue 12 as an attacker tries it against a real `polymodal serve` on 127.0.0.1: files swapped for
links after indexing, files that are not media, requests from other sites and other host names,
hostile uploads, ids and queries. Each test failed on the server before the fix."""

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from conftest import TOKEN, _serve
from PIL import Image

from polymodal.search.ingest import index_folder
from polymodal.search.store import Store
from polymodal.tasks import Embedder


@pytest.fixture(scope="module")
def site(tmp_path_factory, model_dir):
    """A served index over a folder the tests then tamper with: (client, folder, {name: id}, base URL)."""
    root = tmp_path_factory.mktemp("hostile")
    folder = root / "files"
    for sub in ("sub", "dir2"):
        (folder / sub).mkdir(parents=True)
    (folder / "sub" / "notes.txt").write_text("a red circle next to a blue square")
    (folder / "dir2" / "inner.txt").write_text("a green triangle")
    (folder / "changed.txt").write_text("a yellow star")
    (folder / "evil.html").write_text("<script>fetch('/api/stats')</script>")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)).save(folder / "photo.jpg")
    (root / "outside").mkdir()
    (root / "outside" / "inner.txt").write_text("SECRET outside the indexed folder")
    embedder = Embedder.from_checkpoint(model_dir)
    index_folder(folder, embedder, Store(root / "idx", embedder.dim, embedder.model_id, str(model_dir)))
    ids = {os.path.relpath(path, folder): i for i, path in sqlite3.connect(root / "idx" / "meta.sqlite").execute(
        "SELECT id, path FROM items")}
    proc, client, base = _serve(root / "idx")
    yield client, folder, ids, base, root
    client.close()
    proc.terminate()
    proc.wait(10)


@pytest.mark.slow
def test_swapped_symlinks_serve_nothing_outside(site):
    client, folder, ids, _, root = site
    assert client.get(f"/api/items/{ids['sub/notes.txt']}/media").status_code == 200
    (folder / "sub" / "notes.txt").unlink()
    (folder / "sub" / "notes.txt").symlink_to("/etc/passwd")
    r = client.get(f"/api/items/{ids['sub/notes.txt']}/media")
    assert r.status_code == 404 and "re-run polymodal index" in r.json()["detail"] and "root:" not in r.text
    shutil.rmtree(folder / "dir2")
    (folder / "dir2").symlink_to(root / "outside", target_is_directory=True)  # same names, outside the root
    r = client.get(f"/api/items/{ids['dir2/inner.txt']}/media")
    assert r.status_code == 404 and "SECRET" not in r.text
    (folder / "changed.txt").write_text("a yellow star, edited since")  # not the file that was indexed
    r = client.get(f"/api/items/{ids['changed.txt']}/media")
    assert r.status_code == 404 and "changed since it was indexed" in r.json()["detail"]


def test_only_embedded_items_are_served_with_fixed_types(site):
    client, _, ids, _, _ = site
    r = client.get(f"/api/items/{ids['evil.html']}/media")
    assert r.status_code == 404 and "text/html" not in r.headers.get("content-type", "")
    r = client.get(f"/api/items/{ids['photo.jpg']}/media")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in r.headers["content-security-policy"]


def test_other_host_names_are_refused(site):
    client, *_ = site
    assert client.get("/api/health", headers={"Host": "attacker.example"}).status_code == 400  # DNS rebinding
    assert client.get("/api/health", headers={"Host": "localhost"}).status_code == 200


def test_a_cross_site_form_post_is_refused(site):
    client, *_ = site
    files = {"file": ("q.txt", b"a red circle", "text/plain")}
    r = client.post("/api/search/file", files=files, headers={"Origin": "http://attacker.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    r = client.post("/api/search/file", files=files, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert client.post("/api/search/file", files=files, headers={"Origin": str(client.base_url)}).status_code == 200


def test_out_of_range_ids_odd_names_and_huge_queries_are_4xx(site):
    client, *_ = site
    assert client.get("/api/items/99999999999999999999").status_code == 422
    assert client.get("/api/items/99999999999999999999/media").status_code == 422
    r = client.post("/api/search/file", files={"file": ("..", b"a red circle", "text/plain")})
    assert r.status_code == 200 and r.json()["query_modality"] == "text"
    r = client.post("/api/search/arithmetic", json={"text": "red", "plus": ["circle"] * 40_000})
    assert r.status_code == 413  # over this server's 0.05 MiB body limit
    r = client.post("/api/search/arithmetic", json={"text": "red", "plus": ["circle"] * 100})
    assert r.status_code == 422 and "64" in r.text  # at most 64 parts
    r = client.post("/api/search/arithmetic", json={"text": "red", "plus": ["x" * 20_000]})
    assert r.status_code == 422


def test_an_upload_is_cut_at_the_limit_while_it_streams(site):
    client, *_ = site
    sent = 0

    def body():  # 100 MiB, chunked (no Content-Length): the server must stop reading at its 0.05 MiB limit
        nonlocal sent
        yield (b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
               b"Content-Type: application/octet-stream\r\n\r\n")
        for _ in range(1600):
            sent += 65536
            yield b"\0" * 65536

    headers = {"Content-Type": "multipart/form-data; boundary=x", "Authorization": f"Bearer {TOKEN}"}
    try:
        r = httpx.post(f"{client.base_url}/api/search/file", content=body(), headers=headers, timeout=30)
        assert r.status_code == 413
    except httpx.TransportError:  # the server answered and closed while we were still sending
        pass
    assert sent < 16 * 2**20
    r = client.post("/api/search/file", files={"file": ("big.txt", b"a" * 200_000, "text/plain")})
    assert r.status_code == 413  # Content-Length over the limit: refused before reading


@pytest.mark.slow
def test_serve_makes_a_token_and_refuses_open_public_binds(site, tmp_path):
    _, _, _, _, root = site
    proc, client, base = _serve(root / "idx", "--max-upload-mb", "1")
    try:
        assert client.get("/api/health").status_code == 401  # no --token: one was made up
    finally:
        client.close()
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    r = subprocess.run([sys.executable, "-m", "polymodal.cli", "serve", str(root / "idx"), "--host", "0.0.0.0",
                        "--no-token"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "refusing to serve 0.0.0.0 without a token" in r.stderr.replace("\n", " ")
    del out


def test_the_printed_url_carries_the_token_in_its_fragment(site):
    _, _, _, _, root = site
    port = _free_port_for_test()
    proc = subprocess.Popen([sys.executable, "-m", "polymodal.cli", "serve", str(root / "idx"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/#token=" in line
        token = line.strip().rsplit("#token=", 1)[1]
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/health", headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def _free_port_for_test() -> int:
    from conftest import _free_port

    return _free_port()


def test_token_comparison_is_constant_time(site, monkeypatch):
    """In-process: the bearer check goes through hmac.compare_digest (no early exit on the first
    differing character)."""
    import hmac

    from fastapi.testclient import TestClient

    from polymodal.server import app as app_module

    _, _, _, _, root = site
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(app_module.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    with TestClient(app_module.create_app(root / "idx", token="t0k3n"), base_url="http://127.0.0.1") as client:
        assert client.get("/api/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/health", headers={"Authorization": "Bearer t0k3n"}).status_code == 200
    assert calls == [(b"wrong", b"t0k3n"), (b"t0k3n", b"t0k3n")]


@pytest.mark.slow
def test_a_slow_upload_is_decoded_off_the_event_loop_and_stopped_at_the_limit(site, tmp_path):
    """A 44 KB PDF that takes seconds to render: a text search sent meanwhile is answered first, the
    upload gets 503 at the time limit, and the next upload is decoded by a fresh worker."""
    from hostile_files import slow_pdf

    _, _, _, _, root = site
    pdf = slow_pdf(tmp_path / "slow.pdf", 1_000_000).read_bytes()
    proc, client, _ = _serve(root / "idx", "--token", TOKEN, "--max-upload-mb", "0.05", "--timeout", "1.5")
    order = []
    try:
        def upload():
            r = client.post("/api/search/file", files={"file": ("slow.pdf", pdf, "application/pdf")})
            order.append(("upload", r.status_code))

        thread = threading.Thread(target=upload)
        thread.start()
        time.sleep(0.5)  # the upload is being rendered now
        order.append(("text", client.get("/api/search", params={"q": "a red circle"}).status_code))
        thread.join(60)
        for _ in range(20):  # the replacement worker needs a moment to start (it imports torch)
            r = client.post("/api/search/file", files={"file": ("q.txt", b"a red circle", "text/plain")})
            if r.status_code != 503:
                break
            time.sleep(1)
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
    log = proc.stderr.read().decode(errors="replace")[-3000:]
    assert r.status_code == 200 and r.json()["query_modality"] == "text", f"{r.text}\nserver log:\n{log}"
    assert order == [("text", 200), ("upload", 503)]


def _peak_rss_mb(pid: int) -> dict[int, float]:
    """VmHWM (peak resident memory) of a process and all its descendants, in MB."""
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        try:
            status = open(f"/proc/{p}/status").read()
            out[p] = int(status.split("VmHWM:")[1].split()[0]) / 1024
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


@pytest.mark.slow
def test_decompression_bombs_keep_the_server_under_1_gb(site, tmp_path):
    """Each bomb of the issue, uploaded within the 25 MiB limit: a clear 4xx or a result, and no
    process of the server (itself, its decoder worker) ever resident past 1 GB."""
    from hostile_files import flac_bomb, pdf_bomb, png_pixel_bomb, video_bomb

    _, _, _, _, root = site
    bombs = {"frames.mp4": video_bomb(tmp_path / "frames.mp4", frames=3000, width=640, height=480),
             "silence.flac": flac_bomb(tmp_path / "silence.flac", seconds=3600),
             "pages.pdf": pdf_bomb(tmp_path / "pages.pdf"),
             "pixels.png": png_pixel_bomb(tmp_path / "pixels.png")}
    proc, client, _ = _serve(root / "idx", "--token", TOKEN, "--max-upload-mb", "25")
    answers = {}
    try:
        for name, path in bombs.items():
            assert path.stat().st_size < 25 * 2**20
            r = client.post("/api/search/file", files={"file": (name, path.read_bytes(), "application/octet-stream")})
            answers[name] = (r.status_code, r.json().get("detail", ""))
        peaks = _peak_rss_mb(proc.pid)
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
    assert answers["pixels.png"][0] == 400 and "pixel limit" in answers["pixels.png"][1]
    assert {answers[n][0] for n in ("frames.mp4", "silence.flac", "pages.pdf")} == {200}  # sampled, not refused
    print("peak RSS MB per process:", peaks)
    assert len(peaks) >= 2 and max(peaks.values()) < 1024, peaks
