"""A bounded load test of a running server: ``clients`` threads send requests back to back for
``seconds`` (text searches, item lookups, file searches, in turn) and every latency is kept."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

QUERIES = ("a red circle on a beach", "two blue squares in a city", "a large star in a forest",
           "a small green hexagon in a kitchen", "a white triangle in a desert")


@dataclass
class LoadReport:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {"requests": len(self.latencies_ms), "errors": len(self.errors),
                "requests_per_s": round(len(self.latencies_ms) / max(self.seconds, 1e-9), 1),
                "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2)}


def run_load(base_url: str, clients: int = 8, seconds: float = 30.0, token: str | None = None,
             upload: str | Path | None = None) -> LoadReport:
    """Only loopback URLs are accepted: this is a test tool, not a way to load someone's server."""
    import httpx

    if not base_url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        raise ValueError(f"load tests run against loopback servers only, not {base_url}")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    report, lock = LoadReport(), threading.Lock()
    payload = Path(upload).read_bytes() if upload else None
    deadline = time.perf_counter() + seconds

    def client(worker: int) -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
            try:  # the ids to look up; a failure here is the client's first error, not a lost thread
                first = http.get("/api/search", params={"q": QUERIES[0], "k": 20})
                first.raise_for_status()
                ids = [r["id"] for r in first.json()["results"]]
            except (httpx.HTTPError, ValueError, KeyError) as e:
                with lock:
                    report.errors.append(f"client {worker} first search: {type(e).__name__}: {e}")
                return
            n = worker
            while time.perf_counter() < deadline:
                kind = n % 3
                start = time.perf_counter()
                try:
                    if kind == 0 or (kind == 2 and payload is None):
                        r = http.get("/api/search", params={"q": QUERIES[n % len(QUERIES)], "k": 10})
                    elif kind == 1:
                        r = http.get(f"/api/items/{ids[n % len(ids)]}")
                    else:
                        r = http.post("/api/search/file", files={"file": (Path(upload).name, payload)})
                    ok = r.status_code == 200
                    error = None if ok else f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}"
                except httpx.HTTPError as e:
                    error = f"{type(e).__name__}: {e}"
                took = (time.perf_counter() - start) * 1000
                with lock:
                    report.latencies_ms.append(took)
                    if error:
                        report.errors.append(error)
                n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = time.perf_counter() - begin
    return report
