"""Hybrid search speed: query latency of meaning-only vs hybrid (FTS5 bm25 + vectors fused by rank),
and of queries filtered by folder, extension and date, on N synthetic items.

    python benchmarks/hybrid_search.py [--sizes 100000,1000000] [--dim 128] [--queries 200]

Items: clustered unit vectors (as benchmarks/search.py makes them), spread over 7 modalities, 200
folders (two levels), 6 extensions and two years of mtimes, each with 12 words drawn from a Zipf
vocabulary of 20,000 words (a long tail, as real text has), indexed in SQLite FTS5. Queries: a
vector and three words. One thread, k = 10, exact (flat) indexes; SQLite item lookups, snippets and
relevance included. Reference points: the unfiltered meaning-only query of the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search import MIX, clustered, pct  # noqa: E402


def vocabulary(size: int, rng) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, rng.integers(4, 10))) for _ in range(size)]


def build(folder: Path, n: int, dim: int):
    from polymodal.search.store import Store

    rng = np.random.default_rng(0)
    words = vocabulary(20_000, rng)
    zipf = 1 / np.arange(1, len(words) + 1)
    zipf /= zipf.sum()
    root = Path("/data")
    store = Store(folder, dim, "bench", "none")
    store.set_root(root)
    data = clustered(n, dim)
    modalities = rng.choice(list(MIX), size=n, p=list(MIX.values()))
    exts = np.array([".jpg", ".png", ".pdf", ".txt", ".wav", ".mp4"])
    t0 = 1.6e9
    for start in range(0, n, 50_000):
        rows = []
        for i in range(start, min(start + 50_000, n)):
            top, sub = i % 20, (i // 20) % 10
            file = f"{root}/f{top}/s{sub}/item{i}{exts[i % 6]}"
            text = " ".join(words[j] for j in rng.choice(len(words), 12, p=zipf))
            rows.append({"path": file, "file": file, "modality": str(modalities[i]), "size": 1,
                         "mtime": t0 + (i * 7919 % 730) * 86400.0, "sha256": "x", "vector": data[i],
                         "name": f"f{top}/s{sub}/item{i}{exts[i % 6]}", "text": text})
        store.write(rows)
    store.ntotal()
    store.attributes()
    return store, words, zipf


def main() -> None:
    import faiss

    from polymodal.search.filters import Filter
    from polymodal.search.hybrid import hybrid_search
    from polymodal.search.relevance import Calibration, ModalityNull

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    print(f"faiss {faiss.__version__}, dim {args.dim}, {args.queries} single queries, 1 thread, k=10, exact indexes\n")
    print("| items | query | filter keeps | p50 (ms) | p95 (ms) | p50 ÷ meaning-only unfiltered p50 |")
    print("|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            store, words, zipf = build(Path(tmp) / "idx", n, args.dim)
            built = time.perf_counter() - t
            rng = np.random.default_rng(1)
            vectors = clustered(args.queries, args.dim, seed=1)
            texts = [" ".join(words[j] for j in rng.choice(len(words), 3, p=zipf)) for _ in range(args.queries)]
            calibration = Calibration(store.generation(), {m: ModalityNull(0.5, 0.1) for m in MIX})

            def run(fn) -> list[float]:
                times = []
                for q, text in zip(vectors, texts):
                    t = time.perf_counter()
                    fn(q, text)
                    times.append((time.perf_counter() - t) * 1000)
                return times

            keep = store.attributes()
            filters = {
                "none": None,
                "folder f3 (5 %)": Filter.parse(folder="f3", root=store.root),
                "folder f3/s4 (0.5 %)": Filter.parse(folder="f3/s4", root=store.root),
                "ext .pdf (17 %)": Filter.parse(ext="pdf", root=store.root),
                "dates, 3 months (12 %)": Filter.parse(after="2021-01-01", before="2021-04-01", root=store.root),
                "image + ext jpg,png + 1 year": Filter.parse(modality="image", ext="jpg,png", after="2020-09-13",
                                                              before="2021-09-13", root=store.root),
            }
            base = run(lambda q, text: store.search(q, 10))
            ref = pct(base, 50)
            for name, where in filters.items():
                share = "100 %" if where is None else f"{keep.mask(where).sum() / n:.1%}"
                for mode in ("meaning", "hybrid"):
                    times = base if (where is None and mode == "meaning") else run(
                        lambda q, text: hybrid_search(store, q, text, 10, mode, calibration=calibration, where=where))
                    print(f"| {n:,} | {mode}, {name} | {share} | {pct(times, 50):.2f} | {pct(times, 95):.2f} | "
                          f"{pct(times, 50) / ref:.2f} |", flush=True)
            print(f"\n(built {n:,} items in {built:.0f} s)\n", flush=True)
            store.close()


if __name__ == "__main__":
    main()
