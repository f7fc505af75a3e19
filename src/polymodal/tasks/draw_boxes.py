"""Labelled boxes drawn over a picture and saved as PNG (``polymodal detect``)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40)]


def draw_boxes(image: Image.Image, boxes, labels: list[str], path: str | Path) -> Path:
    """boxes [K, 4] (pixels) with ``labels`` [K] written above each box's top-left corner."""
    page = image.convert("RGB").copy()
    draw = ImageDraw.Draw(page)
    width = max(1, round(min(page.size) / 300))
    for k, (box, label) in enumerate(zip(boxes, labels)):
        colour = PALETTE[k % len(PALETTE)]
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)
        left, top, right, bottom = draw.textbbox((x0, y0), label)
        lift = bottom - top + 2
        draw.rectangle([left, top - lift, right + 2, bottom - lift], fill=colour)
        draw.text((x0 + 1, y0 - lift), label, fill=(255, 255, 255))
    path = Path(path)
    page.save(path, format="PNG")
    return path
