"""Search performance: ingest rate per modality, and query latency of exact vs approximate indexes.

    python benchmarks/search.py query [--sizes 10000,100000,1000000] [--dim 128] [--queries 500]
    python benchmarks/search.py ingest [--model runs/imagebind-world/model] [--n 100]
    python benchmarks/search.py filtered [--sizes 1000000] [--dim 128] [--queries 200]

``query``: synthetic clustered unit vectors (1,000 Gaussian clusters on a 16-dimensional subspace plus
noise, like real embeddings, which are far from uniform); single-query latency p50/p99 (one thread, one query per
call, as a server answers them) of FAISS exact inner product (``IndexFlatIP``, what ``polymodal
index`` builds by default) and HNSW (``--approximate``: M=32, efConstruction 80, efSearch 32/64/128), with
HNSW's recall@10 against exact. The reference point is the exact index itself (ratio = speed-up).

``filtered``: a ``Store`` of N clustered vectors over seven modalities (image 40 %, text 20 %, audio
15 %, video 10 %, depth 8 %, thermal 5 %, IMU 2 %); p50/p99 of ``Store.search`` (SQLite lookups
included) unfiltered and filtered to each modality. Side by side in the same run, the previous
design: one FAISS index for everything, filtered by widening the candidate list until k items of
the wanted modality come back.

``ingest``: world test scenes written as ordinary files (png, wav, mp4, txt, depth/thermal/IMU .npy),
indexed one modality at a time with the bound world model; files/s per modality.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def clustered(n: int, dim: int, clusters: int = 1000, intrinsic: int = 16, seed: int = 0) -> np.ndarray:
    """Unit vectors with the structure of real embeddings: a mixture of ``clusters`` Gaussians in an
    ``intrinsic``-dimensional space, mapped linearly into ``dim`` dimensions, plus a little noise.
    (i.i.d. Gaussian vectors in 128-d would make every neighbour nearly tied, which no real
    embedding set looks like.) The map and centres are fixed; ``seed`` draws the points."""
    fixed = np.random.default_rng(12345)
    basis = fixed.standard_normal((intrinsic, dim)).astype(np.float32)
    centres = 2.0 * fixed.standard_normal((clusters, intrinsic)).astype(np.float32)
    rng = np.random.default_rng(seed)
    z = centres[rng.integers(clusters, size=n)] + rng.standard_normal((n, intrinsic)).astype(np.float32)
    x = z @ basis + 0.1 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def latencies(index, queries: np.ndarray, k: int = 10) -> tuple[list[float], np.ndarray]:
    times, ids = [], []
    for q in queries:
        t = time.perf_counter()
        _, i = index.search(q[None], k)
        times.append((time.perf_counter() - t) * 1000)
        ids.append(i[0])
    return times, np.stack(ids)


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def query_bench(args) -> None:
    import faiss

    faiss.omp_set_num_threads(1)
    print(f"faiss {faiss.__version__}, dim {args.dim}, {args.queries} single queries, 1 thread, k=10")
    print("| vectors | index | build (s) | p50 (ms) | p99 (ms) | p50 speed-up vs exact | recall@10 vs exact |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        data = clustered(n, args.dim)
        queries = clustered(args.queries, args.dim, seed=1)
        flat = faiss.IndexFlatIP(args.dim)
        t = time.perf_counter()
        flat.add(data)
        build_flat = time.perf_counter() - t
        exact_t, exact_ids = latencies(flat, queries)
        print(f"| {n:,} | exact (IndexFlatIP) | {build_flat:.1f} | {pct(exact_t, 50):.2f} | {pct(exact_t, 99):.2f} "
              f"| 1.0 | 1.000 |", flush=True)
        faiss.omp_set_num_threads(args.build_threads)
        hnsw = faiss.IndexHNSWFlat(args.dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        t = time.perf_counter()
        hnsw.add(data)
        build = time.perf_counter() - t
        faiss.omp_set_num_threads(1)
        for ef in (32, 64, 128):
            hnsw.hnsw.efSearch = ef
            approx_t, approx_ids = latencies(hnsw, queries)
            recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx_ids, exact_ids)])
            print(f"| {n:,} | HNSW M=32 efSearch={ef} | {build:.1f} | {pct(approx_t, 50):.2f} | {pct(approx_t, 99):.2f} "
                  f"| {pct(exact_t, 50) / pct(approx_t, 50):.1f} | {recall:.3f} |", flush=True)
        del data, flat, hnsw


MIX = {"image": 0.40, "text": 0.20, "audio": 0.15, "video": 0.10, "depth": 0.08, "thermal": 0.05, "imu": 0.02}


def single_index_filtered(store, index, query: np.ndarray, k: int, wanted: set[str]) -> list:
    """The design before issue 12: one index, candidates widened ×4 until k pass the filter."""
    want = min(k, index.ntotal)
    while want > 0:
        _, ids = index.search(query[None], want)
        out = [item for i in ids[0].tolist() if i >= 0 and (item := store.item(i)) and item.modality in wanted]
        if len(out) >= k or want == index.ntotal:
            return out[:k]
        want = min(4 * want, index.ntotal)
    return []


def filtered_bench(args) -> None:
    import faiss

    from polymodal.search.store import Store

    faiss.omp_set_num_threads(1)
    print(f"faiss {faiss.__version__}, dim {args.dim}, {args.queries} single queries, 1 thread, k=10, exact indexes")
    print("| vectors | filter | share | p50 (ms) | p99 (ms) | p50 ÷ unfiltered p50 | one index + widening p50 (ms) |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        data = clustered(n, args.dim)
        modalities = np.random.default_rng(7).choice(list(MIX), size=n, p=list(MIX.values()))
        queries = clustered(args.queries, args.dim, seed=1)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "idx", args.dim, "bench", "none")
            for start in range(0, n, 100_000):
                store.write([{"path": f"/f/{i}", "modality": str(modalities[i]), "size": 1, "mtime": 0.0,
                              "sha256": "x", "vector": data[i]} for i in range(start, min(start + 100_000, n))])
            store.ntotal()
            single = store._new_index()
            ids, vecs = store.vectors()
            single.add_with_ids(vecs, ids)
            del ids, vecs

            def run(fn) -> list[float]:
                times = []
                for q in queries:
                    t = time.perf_counter()
                    fn(q)
                    times.append((time.perf_counter() - t) * 1000)
                return times

            base = run(lambda q: store.search(q, 10))
            old = run(lambda q: single_index_filtered(store, single, q, 10, set(MIX)))
            print(f"| {n:,} | none | 100 % | {pct(base, 50):.2f} | {pct(base, 99):.2f} | 1.00 | {pct(old, 50):.2f} |",
                  flush=True)
            for m, share in MIX.items():
                ours = run(lambda q: store.search(q, 10, {m}))
                old = run(lambda q: single_index_filtered(store, single, q, 10, {m}))
                print(f"| {n:,} | {m} | {share:.0%} | {pct(ours, 50):.2f} | {pct(ours, 99):.2f} | "
                      f"{pct(ours, 50) / pct(base, 50):.2f} | {pct(old, 50):.2f} |", flush=True)
            store.close()


def ingest_bench(args) -> None:
    from polymodal.world.files import write_files
    from polymodal.tasks import Embedder
    from polymodal.search.ingest import index_folder
    from polymodal.search.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        from index_folder import model_folder  # the world ImageBind with random weights when --model is not given

        args.model = str(model_folder(args, Path(tmp)))
        embedder = Embedder.from_checkpoint(args.model)
        everything = write_files(Path(tmp) / "all", "test", args.n, image_size=embedder.processor.image.size)
        suffixes = {"image": ".png", "audio": ".wav", "video": ".mp4", "text": ".txt", "depth": "_depth.npy",
                    "thermal": "_thermal.npy", "imu": "_imu.npy"}
        print(f"{args.n} world test scenes per modality, batch 32, 2 threads, model {args.model}")
        print("| modality | files | seconds | files/s |\n|---|---|---|---|")
        for modality, suffix in suffixes.items():
            folder = Path(tmp) / modality
            folder.mkdir()
            for f in list(everything.iterdir()):
                if f.name.endswith(suffix) and (suffix.startswith("_") or "_" not in f.name):
                    f.rename(folder / f.name)
            store = Store(Path(tmp) / f"idx-{modality}", embedder.dim, embedder.model_id, str(args.model))
            t = time.perf_counter()
            report = index_folder(folder, embedder, store, 32)
            seconds = time.perf_counter() - t
            n = report.added - len(report.failed)
            print(f"| {modality} | {n} | {seconds:.2f} | {n / seconds:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("query", "ingest", "filtered"))
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--model", default=None, help="default: the world ImageBind architecture, random weights")
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    {"query": query_bench, "ingest": ingest_bench, "filtered": filtered_bench}[args.part](args)


if __name__ == "__main__":
    main()
