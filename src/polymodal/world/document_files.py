"""The world's documents as the field's files, so that the FUNSD, DocVQA and class-folder readers
(and ``polymodal doc``) are exercised by the same pages:

    OUT/images/NAME.png                 the page
    OUT/annotations/NAME.json           FUNSD (entities, word boxes, links) + "doc_class"
    OUT/docvqa.json                     DocVQA ({"data": [{questionId, question, image, answers}]})
    OUT/classes/CLASS/NAME.png          RVL-CDIP-style class folders
    OUT/pdf/NAME.pdf                    with ``pdf=True``: the page as an image-only PDF (to OCR)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

from ..data.documents import docvqa_json
from .documents import from_world, funsd, render_document


def write_documents(out: str | Path, split: str = "test", n: int = 20, seed: int = 0, pdf: bool = False) -> Path:
    out = Path(out)
    for sub in ("images", "annotations", "classes"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        doc = render_document(seed, split, i)
        name = f"{split}-{i:05d}"
        image = out / "images" / f"{name}.png"
        Image.fromarray(doc.image).save(image)
        (out / "annotations" / f"{name}.json").write_text(json.dumps(funsd(doc)))
        (out / "classes" / doc.doc_class).mkdir(exist_ok=True)
        shutil.copyfile(image, out / "classes" / doc.doc_class / f"{name}.png")
        if pdf:
            (out / "pdf").mkdir(exist_ok=True)
            Image.fromarray(doc.image).save(out / "pdf" / f"{name}.pdf", resolution=72)
        rows += [{**r, "image": f"images/{name}.png"} for r in docvqa_json(from_world(doc), name)]
    (out / "docvqa.json").write_text(json.dumps({"dataset_name": "polymodal-world", "dataset_split": split, "data": rows}))
    return out
