"""Entities and key→value links drawn over the page (``polymodal doc extract --draw``)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"header": (148, 0, 211), "question": (30, 100, 230), "answer": (20, 160, 60), "other": (128, 128, 128)}


def draw_entities(image: Image.Image, entities: list[dict], links: list[dict], path: str | Path) -> Path:
    """``entities`` (dicts with ``label`` and pixel ``box``) as coloured rectangles, ``links`` (by
    entity id) as lines from the question's right edge to the answer's left edge; written as PNG."""
    page = image.convert("RGB").copy()
    draw = ImageDraw.Draw(page)
    by_id = {e["id"]: e for e in entities}
    for e in entities:
        draw.rectangle(e["box"], outline=COLOURS.get(e["label"], COLOURS["other"]), width=2)
    for link in links:
        q, a = by_id[link["question"]]["box"], by_id[link["answer"]]["box"]
        draw.line([(q[2], (q[1] + q[3]) / 2), (a[0], (a[1] + a[3]) / 2)], fill=(230, 60, 30), width=2)
    path = Path(path)
    page.save(path)
    return path
