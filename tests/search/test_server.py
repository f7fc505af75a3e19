"""The HTTP API started for real (uvicorn on 127.0.0.1) and queried over HTTP."""

import httpx
import pytest

def test_health_stats_and_token(server):
    client, _, base = server
    assert client.get("/api/health").json() == {"status": "ok"}
    stats = client.get("/api/stats").json()
    assert stats["indexed"] == {**{m: 4 for m in ("image", "audio", "depth", "thermal", "imu", "text")}, "pdf": 2}
    r = httpx.get(base + "/api/stats")
    assert r.status_code == 401 and "bearer token" in r.json()["detail"]
    assert httpx.get(base + "/api/stats", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_search_text_file_and_arithmetic(server):
    client, folder, _ = server
    r = client.get("/api/search", params={"q": "a red circle on a beach", "k": 5, "modality": "image,audio"})
    hits = r.json()["results"]
    assert r.status_code == 200 and len(hits) == 5 and {h["modality"] for h in hits} <= {"image", "audio"}
    with open(folder / "scene00001.png", "rb") as f:
        r = client.post("/api/search/file", files={"file": ("query.png", f, "image/png")}, params={"k": 3})
    body = r.json()
    assert body["query_modality"] == "image" and body["results"][0]["name"] == "scene00001.png"
    assert body["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    first = body["results"][0]["id"]
    r = client.post("/api/search/arithmetic", json={"plus": [first], "k": 1, "modality": "image"})
    assert r.json()["results"][0]["id"] == first
    item = client.get(f"/api/items/{first}").json()
    assert item["name"] == "scene00001.png" and item["modality"] == "image"
    media = client.get(f"/api/items/{first}/media")
    assert media.headers["content-type"] == "image/png" and media.content == (folder / "scene00001.png").read_bytes()


@pytest.mark.parametrize("modality", ["depth", "thermal", "imu", "pdf"])
def test_sensor_and_pdf_media_are_rendered_as_png(server, modality):
    client, _, _ = server
    hits = client.get("/api/search", params={"q": "x", "k": 50, "modality": modality}).json()["results"]
    assert hits and all(h["modality"] == modality for h in hits)
    media = client.get(hits[0]["media"])
    assert media.status_code == 200 and media.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_user_mistakes_are_4xx_json(server):
    client, folder, _ = server
    cases = [
        client.post("/api/search/file", files={"file": ("empty.png", b"", "image/png")}),
        client.post("/api/search/file", files={"file": ("x.bin", bytes(range(256)), "application/octet-stream")}),
        client.post("/api/search/file", files={"file": ("big.png", b"\x89PNG" + bytes(60_000), "image/png")}),
        client.post("/api/search/arithmetic", content=b"{not json", headers={"Content-Type": "application/json"}),
        client.post("/api/search/arithmetic", json={"plus": [999999]}),
        client.get("/api/search", params={"q": "x", "modality": "smell"}),
        client.get("/api/search", params={"q": ""}),
        client.get("/api/items/999999"),
        client.get("/api/items/999999/media"),
    ]
    codes = [r.status_code for r in cases]
    assert codes == [400, 415, 413, 422, 404, 400, 422, 404, 404]
    assert all("detail" in r.json() for r in cases)
    assert "empty" in cases[0].json()["detail"] and "x.bin" in cases[1].json()["detail"]


def test_openapi_is_served_without_a_cdn(server):
    client, _, _ = server
    spec = client.get("/openapi.json").json()
    assert "/api/search/file" in spec["paths"]
    docs = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "http://" not in docs and "https://" not in docs
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    page = httpx.get(client.base_url.join("/")).text  # the page needs no token; its API calls do
    assert "<script" in page and "http://" not in page and "https://" not in page


def _raw_get(base: str, path: str, authorization: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (httpx would resolve ``..`` before sending): (status, body)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: {authorization}\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("path", ["/api/items/../../etc/passwd/media", "/api/items/%2e%2e%2f%2e%2e%2fetc%2fpasswd/media",
                                  "/api/items/1/../../../../etc/passwd", "/../../../etc/passwd"])
def test_dot_dot_paths_reach_the_server_and_serve_nothing_outside(server, path):
    client, _, base = server
    status, body = _raw_get(base, path, client.headers["Authorization"])
    assert status == 404 and b"root:" not in body


def test_words_modes_relevance_and_ask_over_http(server):
    client, folder, _ = server
    r = client.get("/api/search", params={"q": "hexagon", "mode": "words", "k": 5})
    body = r.json()
    assert r.status_code == 200 and body["results"] and all("hexagon" in h["matched"] for h in body["results"])
    assert all("path" not in h and h["name"] for h in body["results"])  # names, never the server's paths
    bad = client.get("/api/search", params={"q": '"unbalanced', "mode": "words"})
    assert bad.status_code == 400 and "cannot parse the keyword query" in bad.json()["detail"]
    assert client.get("/api/search", params={"q": "x", "mode": "vibes"}).status_code == 400
    assert client.get("/api/search", params={"q": "x", "min_relevance": 2}).status_code == 422
    none = client.get("/api/search", params={"q": "zzqxv", "mode": "words", "min_relevance": 0.5}).json()
    assert none["no_match"] is True and none["results"] == []
    asked = client.get("/api/ask", params={"q": "what is in the manual?"}).json()
    assert asked["answer"] is None and "no QA model" in asked["note"]
    assert asked["pages"] and all(p["name"] == "manual.pdf" or p["name"].endswith(".png") for p in asked["pages"])
    assert client.get("/api/ask", params={"q": "   "}).status_code == 400
