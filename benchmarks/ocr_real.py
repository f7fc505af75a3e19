"""OCR on real documents, clean and as a camera sees them: word recall and precision against the
PDFs' own text layers, for polymodal's default reading and the engines alone.

    python benchmarks/ocr_real.py [--per-pdf 2] [--dpi 150] [--cache ~/.cache/polymodal-ocr-real]

The documents are PDFs that Debian packages ship (manuals with a text layer: bash, gnuplot, asymptote,
groff, libtasn1, shared-mime-info), fetched once with ``apt-get download`` and unpacked into the cache;
no labelling is needed, the text layer is the truth. Pages with at least 80 words are taken at even
intervals through each PDF and rendered at ``--dpi``. Each is read as rendered ("clean") and after a
camera's degradations ("camera": rotation 1–7°, a perspective tilt, an illumination gradient, blur,
low contrast, noise, JPEG at quality 30, a dark table around the page). The real photograph is
scikit-image's ``page.png`` (a phone picture of a book page under uneven light; its words typed in below),
taken from the scikit-image wheel with ``pip download``.

Words are compared as multisets per page after NFKC and trimming punctuation at both ends; recall is
the share of the truth's words read, precision the share of the words read that are on the page.
"Worse than CLI" counts pages where a reader got fewer words right than ``tesseract page.png stdout``
(Tesseract's own command line, default settings). Pages per second: polymodal's default on the clean
pages, one page per core (the way ``polymodal doc`` reads a document).
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import tempfile
import time
import unicodedata
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

PACKAGES = {"bash-doc": "usr/share/doc/bash/bashref.pdf", "gnuplot-doc": "usr/share/doc/gnuplot/gnuplot.pdf",
            "asymptote-doc": "usr/share/doc/asymptote/asymptote.pdf",
            "libtasn1-doc": "usr/share/doc/libtasn1-doc/libtasn1.pdf",
            "shared-mime-info": "usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
            "groff": "usr/share/doc/groff-base/pdf/automake.pdf.gz"}
# Pages the first trial found Tesseract loses (dot leaders): libtasn1's table of contents and its
# function index ("asn1_…" read as "asni_…", the page numbers dropped).
HARD_PAGES = (("libtasn1-doc", 3), ("libtasn1-doc", 36))
PAGE_PNG_TRUTH = """Region-based segmentation
Let us first determine markers of the coins and the background. These markers are pixels that we can label
unambiguously as either object or background. Here, the markers are found at the two extreme parts of the
histogram of grey values:
>>> markers = np.zeros_like(coins)"""
PUNCT = "\"'`“”‘’«»()[]{}<>.,;:!?•·–—-_*|/\\"


def words_of(text_or_words) -> Counter:
    tokens = text_or_words.split() if isinstance(text_or_words, str) else text_or_words
    out = Counter()
    for t in tokens:
        t = unicodedata.normalize("NFKC", t).strip(PUNCT)
        if any(c.isalnum() for c in t):
            out[t] += 1
    return out


def debian_pdfs(cache: Path) -> list[Path]:
    """The PDFs of :data:`PACKAGES`, downloaded and unpacked into ``cache`` on first use."""
    cache.mkdir(parents=True, exist_ok=True)
    found = []
    for package, inner in PACKAGES.items():
        path = cache / package / inner
        if not path.exists():
            debs = cache / "debs"
            debs.mkdir(exist_ok=True)
            subprocess.run(["apt-get", "download", package], cwd=debs, check=True, capture_output=True)
            deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
            subprocess.run(["dpkg-deb", "-x", str(deb), str(cache / package)], check=True)
        if path.suffix == ".gz" and path.exists():
            plain = path.with_suffix("")
            if not plain.exists():
                plain.write_bytes(gzip.decompress(path.read_bytes()))
            path = plain
        if path.exists():
            found.append(path)
        else:
            print(f"# {package}: no {inner} in the package; left out")
    return found


def skimage_page(cache: Path) -> Path:
    """scikit-image's ``data/page.png``, out of its wheel (pip download, no install)."""
    target = cache / "page.png"
    if not target.exists():
        wheels = cache / "wheels"
        subprocess.run(["pip", "download", "--no-deps", "-q", "-d", str(wheels), "scikit-image"], check=True)
        with zipfile.ZipFile(sorted(wheels.glob("scikit_image-*.whl"))[-1]) as z:
            target.write_bytes(z.read("skimage/data/page.png"))
    return target


def pdf_pages(pdf: Path, per_pdf: int, dpi: float, min_words: int = 80) -> list[tuple[str, Image.Image, Counter]]:
    """``per_pdf`` pages of ``pdf`` at even intervals, each the first from there with ``min_words``."""
    import pypdfium2 as pdfium

    from polymodal.documents.reader import _text_layer_words

    doc = pdfium.PdfDocument(str(pdf))
    n, out, used = len(doc), [], set()
    for k in range(per_pdf):
        for i in range(int(n * (k + 1) / (per_pdf + 1)), n):
            if i in used:
                continue
            page = doc[i]
            w, h = page.get_size()
            image = page.render(scale=dpi / 72).to_pil().convert("RGB")
            truth = words_of([wd.text for wd in _text_layer_words(page, h, image.width / w, image.height / h)[0]])
            if sum(truth.values()) >= min_words:
                out.append((f"{pdf.stem} p{i + 1}", image, truth))
                used.add(i)
                break
    doc.close()
    return out


def hard_pages(cache: Path, dpi: float) -> list[tuple[str, Image.Image, Counter]]:
    import pypdfium2 as pdfium

    from polymodal.documents.reader import _text_layer_words

    out = []
    for package, number in HARD_PAGES:
        pdf = cache / package / PACKAGES[package]
        doc = pdfium.PdfDocument(str(pdf))
        page = doc[number - 1]
        w, h = page.get_size()
        image = page.render(scale=dpi / 72).to_pil().convert("RGB")
        truth = words_of([wd.text for wd in _text_layer_words(page, h, image.width / w, image.height / h)[0]])
        out.append((f"{pdf.stem} p{number}", image, truth))
        doc.close()
    return out


def camera(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A photo of the page: on a dark table, tilted, rotated 1–7°, unevenly lit, blurred, low in
    contrast, noisy and saved as JPEG at quality 30."""
    page = np.asarray(image.convert("L"), np.float32)
    h, w = page.shape
    margin = int(0.06 * max(h, w))
    canvas_w, canvas_h = w + 2 * margin, h + 2 * margin
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = rng.uniform(-0.025, 0.025, (4, 2)) * [w, h]
    dst = src + margin + jitter
    warp = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    angle = rng.uniform(1, 7) * rng.choice([-1, 1])
    rot = np.vstack([cv2.getRotationMatrix2D((canvas_w / 2, canvas_h / 2), angle, 1.0), [0, 0, 1]])
    table = float(rng.uniform(40, 90))
    photo = cv2.warpPerspective(page, rot @ warp, (canvas_w, canvas_h), flags=cv2.INTER_LINEAR, borderValue=table)
    yy, xx = np.mgrid[0:canvas_h, 0:canvas_w].astype(np.float32)
    t = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(t) * xx / canvas_w + np.sin(t) * yy / canvas_h)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    light = 1.0 - rng.uniform(0.35, 0.55) * ramp  # the far side gets about half the light
    photo = photo * light
    photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(0.6, 1.1))
    low, high = rng.uniform(40, 70), rng.uniform(180, 215)  # a grey page and grey ink
    photo = low + photo * (high - low) / 255.0
    photo = photo + rng.normal(0, 5, photo.shape)
    ok, jpeg = cv2.imencode(".jpg", np.clip(photo, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 30])
    return Image.fromarray(cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)).convert("RGB")


def tesseract_cli(image: Image.Image) -> list[str]:
    """``tesseract page.png stdout`` with its defaults (one OpenMP thread, as ours run)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "page.png"
        image.save(path)
        ran = subprocess.run(["tesseract", str(path), "stdout"], capture_output=True, text=True,
                             env={**os.environ, "OMP_THREAD_LIMIT": "1"}, check=True)
    return ran.stdout.split()


def readers(with_rapidocr: bool) -> dict:
    from polymodal.documents.cleanup import DEFAULT_STEPS, STEPS
    from polymodal.documents.ocr import RapidOCR, TesseractOCR

    out = {"polymodal default (clean-up auto, psm auto)": TesseractOCR(),
           "tesseract CLI, default settings": tesseract_cli,
           "tesseract psm 6, page as given": TesseractOCR(psm=6, clean="off", upscale="off")}
    for step in STEPS:
        out[f"tesseract psm 3 + {step} alone"] = TesseractOCR(psm=3, clean=step, upscale="auto" if step == "upscale" else "off")
    for step in DEFAULT_STEPS:
        out[f"polymodal default without {step}"] = TesseractOCR(clean=",".join(s for s in DEFAULT_STEPS if s != step),
                                                               upscale="off" if step == "upscale" else "auto")
    out["polymodal clean-up, psm 3 only"] = TesseractOCR(psm=3)
    if with_rapidocr:
        out["polymodal default + weak lines reread by rapidocr"] = TesseractOCR(reread="rapidocr")
        out["rapidocr"] = RapidOCR()
    return out


def texts(reader, image) -> list[str]:
    got = reader(image)
    return [w if isinstance(w, str) else w.text for w in got]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-pdf", type=int, default=2)
    ap.add_argument("--dpi", type=float, default=150)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "polymodal-ocr-real")
    ap.add_argument("--no-rapidocr", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    clean_pages = [p for pdf in debian_pdfs(args.cache) for p in pdf_pages(pdf, args.per_pdf, args.dpi)]
    sets = {"clean": clean_pages,
            "camera": [(name, camera(image, rng), truth) for name, image, truth in clean_pages],
            "dot leaders (libtasn1 contents and index)": hard_pages(args.cache, args.dpi),
            "photo": [("skimage page.png", Image.open(skimage_page(args.cache)).convert("RGB"), words_of(PAGE_PNG_TRUTH))]}
    rs = readers(not args.no_rapidocr)
    print(f"# {len(clean_pages)} pages from {len({n.split()[0] for n, _, _ in clean_pages})} PDFs at {args.dpi:g} dpi, "
          f"{sum(sum(t.values()) for _, _, t in clean_pages)} words")
    for set_name, pages in sets.items():
        hits = {k: [] for k in rs}
        read = {k: 0 for k in rs}
        seconds = {k: 0.0 for k in rs}
        truth_n = sum(sum(t.values()) for _, _, t in pages)
        for name, image, truth in pages:
            for k, reader in rs.items():
                t0 = time.perf_counter()
                got = words_of(texts(reader, image))
                seconds[k] += time.perf_counter() - t0
                hits[k].append(sum((got & truth).values()))
                read[k] += sum(got.values())
        cli = hits["tesseract CLI, default settings"]
        print(f"\n## {set_name}: {len(pages)} page(s), {truth_n} words\n")
        print("| reader | word recall | word precision | pages worse than CLI | s/page (one core) |")
        print("|---|---|---|---|---|")
        for k in rs:
            worse = sum(a < b for a, b in zip(hits[k], cli))
            print(f"| {k} | {sum(hits[k]) / truth_n:.3f} | {sum(hits[k]) / max(read[k], 1):.3f} | {worse} | "
                  f"{seconds[k] / len(pages):.2f} |")
        if len(pages) > 1:
            worst = [(h - c, n) for h, c, (n, _, _) in zip(hits["polymodal default (clean-up auto, psm auto)"], cli, pages) if h < c]
            if worst:
                print("\nworse than CLI: " + ", ".join(f"{n} ({d:+d} words)" for d, n in worst))

    from polymodal.documents.ocr import TesseractOCR

    default = TesseractOCR()
    workers = default.page_workers
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(default, [image for _, image, _ in clean_pages]))
    rate = len(clean_pages) / (time.perf_counter() - t0)
    print(f"\npolymodal default, clean pages, {workers} page(s) at a time: {rate:.2f} pages/s")


if __name__ == "__main__":
    main()
