"""Does hybrid search find more than words or meaning alone? nDCG@10 and R@10 on a labelled query
set over world files and real files; and the cost of OCR at ingest.

    python benchmarks/search_quality.py [--model runs/pipeline/imagebind/model] [--scenes 100]
                                        [--cache ~/.cache/polymodal-ocr-real]

The folder: ``--scenes`` world test scenes as ordinary files (png, wav, mp4, txt, depth/thermal/IMU
.npy) and real files — three Debian manuals as PDFs (bash-doc, shared-mime-info, libtasn1-doc;
``apt-get download``), Debian's freedesktop sounds (``sound-theme-freedesktop``, .oga) and
scikit-image's sample pictures (``pip download``; its ``page.png`` is a photographed page).

The labelled queries (relevant items fixed before any search ran):

- **world**: a paraphrase of each of 40 indexed scenes' captions (not the one in its .txt file);
  relevant: every item of that scene (its picture, sound, video, caption, depth, thermal, IMU);
- **manuals**: the PDFs' own bookmarks (their outline, written by the authors): the title is the
  query, the page it points to is relevant (tables of contents and indexes that repeat the title
  are not);
- **sounds and pictures**: 12 hand-written requests naming what a file holds ("a camera shutter",
  "a photo of an astronaut", "the page about region-based segmentation") → that file.

Modes: ``meaning`` (vectors), ``words`` (FTS5 bm25), ``hybrid`` (both, fused by rank). Ingest: the
same folder indexed with ``--ocr auto`` and ``--ocr off``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from ocr_real import debian_pdfs  # noqa: E402

MANUALS = ("bash-doc", "shared-mime-info", "libtasn1-doc")
REQUESTS = {  # query → file name (sounds from sound-theme-freedesktop, pictures from scikit-image)
    "a camera shutter": "camera-shutter.oga", "a phone ringing for an incoming call": "phone-incoming-call.oga",
    "the sound of a message arriving": "message-new-instant.oga", "a door bell": "bell.oga",
    "the sound when a device is added": "device-added.oga", "a warning dialog sound": "dialog-warning.oga",
    "a photo of an astronaut": "astronaut.png", "a cup of coffee": "coffee.png", "a rocket on the launch pad":
    "rocket.jpg", "a horse": "horse.png", "the page about region-based segmentation": "page.png",
    "coins on a table": "coins.png",
}


def real_files(folder: Path, cache: Path) -> None:
    (folder / "manuals").mkdir(parents=True)
    for pdf in debian_pdfs(cache):
        if any(m in str(pdf) for m in MANUALS):
            shutil.copy(pdf, folder / "manuals" / pdf.name)
    sounds = Path("/usr/share/sounds/freedesktop/stereo")
    if not sounds.is_dir():
        subprocess.run(["apt-get", "install", "-y", "-qq", "sound-theme-freedesktop"], check=True, capture_output=True)
    shutil.copytree(sounds, folder / "sounds")
    wheels = cache / "wheels"
    if not list(wheels.glob("scikit_image-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), "scikit-image"],
                       check=True)
    (folder / "pictures").mkdir()
    with zipfile.ZipFile(sorted(wheels.glob("scikit_image-*.whl"))[-1]) as z:
        for name in z.namelist():
            if name.startswith("skimage/data/") and name.endswith((".png", ".jpg")) and "/" not in name[13:]:
                (folder / "pictures" / Path(name).name).write_bytes(z.read(name))


def bookmarks(pdf: Path, limit: int = 12) -> list[tuple[str, int]]:
    """(title, 1-based page) of a PDF's outline entries, the first ``limit`` with distinct pages past the
    first few pages (front matter)."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    out, seen = [], set()
    for bm in doc.get_toc(max_depth=3):
        dest = bm.get_dest()
        page = dest.get_index() if dest is not None else None
        title = " ".join(bm.get_title().split())
        title = title.split(" ", 1)[1] if title[:1].isdigit() and " " in title else title  # "3.5.3 Shell …" → "Shell …"
        if page is None or page < 3 or page in seen or len(title) < 6:
            continue
        seen.add(page)
        out.append((title, page + 1))
    doc.close()
    rng = np.random.default_rng(0)
    return [out[i] for i in sorted(rng.choice(len(out), min(limit, len(out)), replace=False))]


def ndcg(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    gains = sum(1 / math.log2(i + 2) for i, p in enumerate(ranked[:k]) if p in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return gains / ideal


def main(experiment=None) -> None:
    from polymodal.search.hybrid import Searcher
    from polymodal.search.ingest import index_folder
    from polymodal.search.store import Store
    from polymodal.tasks import Embedder
    from polymodal.world.captions import captions
    from polymodal.world.files import write_files
    from polymodal.world.scene import sample_scene

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("runs/pipeline/imagebind/model"))
    ap.add_argument("--scenes", type=int, default=100)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "polymodal-ocr-real")
    args = ap.parse_args()
    embedder = Embedder.from_checkpoint(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "files"
        start = 300  # the pipeline's held-out scenes
        write_files(folder / "world", "test", args.scenes, start=start)
        real_files(folder, args.cache)
        files = [p for p in folder.rglob("*") if p.is_file()]
        print(f"{len(files)} files: {args.scenes} world scenes, "
              f"{len(list((folder / 'manuals').iterdir()))} manuals, {len(list((folder / 'sounds').iterdir()))} sounds, "
              f"{len(list((folder / 'pictures').iterdir()))} pictures\n")
        stores = {}
        print("| ingest | files | seconds | files/s | items with words |")
        print("|---|---|---|---|---|")
        for ocr in ("off", "auto"):
            store = Store(Path(tmp) / f"idx-{ocr}", embedder.dim, embedder.model_id, str(args.model))
            t = time.perf_counter()
            index_folder(folder, embedder, store, ocr=ocr)
            seconds = time.perf_counter() - t
            worded = store.db.execute("SELECT COUNT(*) FROM items WHERE text_source IS NOT NULL").fetchone()[0]
            print(f"| --ocr {ocr} | {len(files)} | {seconds:.1f} | {len(files) / seconds:.1f} | {worded} |", flush=True)
            stores[ocr] = store
        store = stores["auto"]
        queries: dict[str, list[tuple[str, set[str]]]] = {"world": [], "manuals": [], "sounds and pictures": []}
        for i in range(start, start + min(40, args.scenes)):
            scene = sample_scene(0, "test", i)
            stem = folder / "world" / f"scene{i:05d}"
            said = stem.with_suffix(".txt").read_text().strip()
            text = next((c["text"] for c in captions(scene, 4) if c["text"] != said), said)
            relevant = {p for (p,) in store.db.execute("SELECT path FROM items WHERE file LIKE ?", (f"{stem}%",))}
            queries["world"].append((text, relevant))
        for pdf in sorted((folder / "manuals").iterdir()):
            for title, page in bookmarks(pdf):
                queries["manuals"].append((title, {f"{pdf}#page={page}"}))
        for text, name in REQUESTS.items():
            found = [p for p in folder.rglob(name)]
            if found:
                queries["sounds and pictures"].append((text, {str(found[0])}))
        searcher = Searcher(store, embedder)
        if experiment is not None:
            return experiment(searcher, queries)
        print(f"\n{sum(len(q) for q in queries.values())} queries: "
              + ", ".join(f"{len(q)} {name}" for name, q in queries.items()) + "\n")
        print("| queries | mode | nDCG@10 | R@10 |")
        print("|---|---|---|---|")
        mixed: dict[str, list[tuple[float, float]]] = {}
        for name, qs in queries.items():
            for mode in ("meaning", "words", "hybrid"):
                scores = []
                for text, relevant in qs:
                    vector = embedder.embed_texts([text])[0].numpy()
                    ranked = [h.item.path for h in searcher.search(vector, text, 10, mode).hits]
                    scores.append((ndcg(ranked, relevant), len(set(ranked) & relevant) / len(relevant)))
                mixed.setdefault(mode, []).extend(scores)
                print(f"| {name} | {mode} | {np.mean([s[0] for s in scores]):.3f} | {np.mean([s[1] for s in scores]):.3f} |",
                      flush=True)
        for mode, scores in mixed.items():
            print(f"| **all (mixed)** | {mode} | {np.mean([s[0] for s in scores]):.3f} | "
                  f"{np.mean([s[1] for s in scores]):.3f} |")


if __name__ == "__main__":
    main()
