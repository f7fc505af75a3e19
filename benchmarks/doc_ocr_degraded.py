"""The document models on what OCR gives from photographed pages: entity / link F1 and QA ANLS on the
world's validation pages as rendered and after a camera's degradations (benchmarks/ocr_real.py's
``camera``: rotation, tilt, uneven light, blur, low contrast, noise, JPEG 30, a dark table around),
each read by Tesseract with polymodal's clean-up and adaptive page segmentation (the default) and
without them (the page as given, psm 3: what the tesseract CLI does).

    python benchmarks/doc_ocr_degraded.py [--pages 40] [--entities MODEL] [--qa MODEL]

Without ``--entities`` / ``--qa`` / ``--qa-jitter`` the models are trained first with the repository's
configs (configs/doc-entities-world.yaml — box jitter on — and configs/doc-qa-world.yaml with
``data.box_jitter`` 0 and 8; ≈ 8 min on 2 cores) into runs/bench-doc-ocr/. Scores match entities and answers by text, as the training runs' OCR
scores do, so the words' boxes on the photo need no mapping back.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from ocr_real import camera  # noqa: E402


def trained(config: str, out: Path, threads: int, *overrides: str) -> Path:
    from polymodal.train.config import load_config
    from polymodal.train.trainer import run

    if not (out / "model" / "model.safetensors").is_file():
        run(load_config(Path("configs") / config, [f"train.out={out}", f"train.threads={threads}", *overrides]))
    return out / "model"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=40)
    ap.add_argument("--entities", type=Path)
    ap.add_argument("--qa", type=Path, help="a QA model trained without box jitter")
    ap.add_argument("--qa-jitter", type=Path, help="a QA model trained with data.box_jitter=8")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads while training the models")
    args = ap.parse_args()

    from polymodal.data.documents import page_image
    from polymodal.documents.ocr import TesseractOCR
    from polymodal.tasks.documents import DocumentModel, DocumentPage
    from polymodal.train.documents import score_entities, score_qa
    from polymodal.world.documents import world_documents

    entities = DocumentModel.from_folder(args.entities or trained("doc-entities-world.yaml", Path("runs/bench-doc-ocr/entities"), args.threads))
    qa = DocumentModel.from_folder(args.qa or trained("doc-qa-world.yaml", Path("runs/bench-doc-ocr/qa"), args.threads,
                                                      "data.box_jitter=0"))
    qa_jitter = DocumentModel.from_folder(args.qa_jitter or trained("doc-qa-world.yaml", Path("runs/bench-doc-ocr/qa-jitter"),
                                                                    args.threads, "data.box_jitter=8"))
    examples = world_documents("val", args.pages)
    rng = np.random.default_rng(args.seed)
    images = {"as rendered": [page_image(ex) for ex in examples]}
    # A phone photographs paper, not a 320 × 400 bitmap: the page is printed at 3× (text ≈ 25 px) first.
    images["camera"] = [camera(im.resize((3 * im.width, 3 * im.height), Image.BICUBIC), rng) for im in images["as rendered"]]
    readers = {"clean-up + psm auto (default)": TesseractOCR(),
               "page as given, psm 3 (the CLI's reading)": TesseractOCR(psm=3, clean="off", upscale="off")}
    print(f"# {args.pages} world validation pages (320×400), {sum(len(ex.qa) for ex in examples)} questions")
    print("| pages | words read by | entity F1 | link F1 | QA ANLS | QA exact | QA ANLS, box jitter 8 | s/page OCR |")
    print("|---|---|---|---|---|---|---|---|")
    pages = [(ex, DocumentPage(list(ex.words), np.asarray(ex.boxes, np.float32), ex.width, ex.height, im))
             for ex, im in zip(examples, images["as rendered"])]
    e, q, j = score_entities(entities, pages), score_qa(qa, pages), score_qa(qa_jitter, pages)
    print(f"| as rendered | the renderer (ground truth) | {e['entity_f1']:.3f} | {e['link_f1']:.3f} | {q['anls']:.3f} | "
          f"{q['exact_match']:.3f} | {j['anls']:.3f} | — |")
    for condition, ims in images.items():
        for name, reader in readers.items():
            t0 = time.perf_counter()
            read = [reader(im) for im in ims]
            seconds = (time.perf_counter() - t0) / len(ims)
            pages = [(ex, DocumentPage([w.text for w in words], np.asarray([w.box for w in words], np.float32).reshape(-1, 4),
                                       im.width, im.height, im.convert("RGB")))
                     for ex, words, im in zip(examples, read, ims)]
            e, q, j = score_entities(entities, pages), score_qa(qa, pages), score_qa(qa_jitter, pages)
            print(f"| {condition} | {name} | {e['entity_f1']:.3f} | {e['link_f1']:.3f} | {q['anls']:.3f} | "
                  f"{q['exact_match']:.3f} | {j['anls']:.3f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
