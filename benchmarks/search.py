"""Search performance: ingest rate per modality, and query latency of exact vs approximate indexes.

    python benchmarks/search.py query [--sizes 10000,100000,1000000] [--dim 128] [--queries 500]
    python benchmarks/search.py ingest --model runs/imagebind-world/model [--n 100]

``query``: synthetic clustered unit vectors (1,000 Gaussian clusters on a 16-dimensional subspace plus
noise, like real embeddings, which are far from uniform); single-query latency p50/p99 (one thread, one query per
call, as a server answers them) of FAISS exact inner product (``IndexFlatIP``, what ``polymodal
index`` builds by default) and HNSW (``--approximate``: M=32, efConstruction 80, efSearch 32/64/128), with
HNSW's recall@10 against exact. The reference point is the exact index itself (ratio = speed-up).

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


def ingest_bench(args) -> None:
    from polymodal.data.world.files import write_files
    from polymodal.tasks import Embedder
    from polymodal.search.ingest import index_folder
    from polymodal.search.store import Store

    embedder = Embedder.from_checkpoint(args.model)
    with tempfile.TemporaryDirectory() as tmp:
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
    parser.add_argument("part", choices=("query", "ingest"))
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--model", default="runs/imagebind-world/model")
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    query_bench(args) if args.part == "query" else ingest_bench(args)


if __name__ == "__main__":
    main()
