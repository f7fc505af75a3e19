"""Reading the JSON and JSON-lines annotation files the field ships (VQA v2, COCO, VCR, Hateful
Memes, RefCOCO tables) with their sizes bounded before anything is parsed, and each bad record named
by file and line while the rest load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

MAX_JSON_BYTES = 2 << 30  # VQA v2's train annotations are ≈ 330 MB, COCO's instances ≈ 450 MB


class AnnotationFormatError(ValueError):
    """An annotation file as a whole cannot be read (missing, too large, not JSON, wrong top-level
    shape); the message names the file."""


def check_file(path: str | Path, max_bytes: int = MAX_JSON_BYTES) -> Path:
    path = Path(path)
    if not path.is_file():
        raise AnnotationFormatError(f"{path}: no such file")
    if path.stat().st_size > max_bytes:
        raise AnnotationFormatError(f"{path}: {path.stat().st_size} bytes is more than such a file holds "
                                    f"(limit {max_bytes})")
    return path


def read_json(path: str | Path, expect: type = dict, max_bytes: int = MAX_JSON_BYTES):
    """The JSON value of ``path``, which must be an ``expect`` (dict, list, or object: anything)."""
    path = check_file(path, max_bytes)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AnnotationFormatError(f"{path}: not JSON ({e})") from None
    if expect is not object and not isinstance(data, expect):
        raise AnnotationFormatError(f"{path}: expected a JSON {'object' if expect is dict else 'list'}, "
                                    f"got {type(data).__name__}")
    return data


def json_list(path: str | Path, key: str, layout: str, data: dict | None = None) -> list:
    """The list under ``key`` of the JSON object in ``path`` (or of ``data``, already read from it):
    the top level of the ``layout``."""
    data = read_json(path, object) if data is None else data
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise AnnotationFormatError(f"{path}: expected an object with a {key!r} list (the {layout} layout)")
    return data[key]


def jsonl_records(path: str | Path, problems: list[str],
                  max_bytes: int = MAX_JSON_BYTES) -> Iterator[tuple[str, dict]]:
    """(``"file:line"``, object) for each line of a JSON-lines file, or of a JSON list of objects
    (``.json``); a line that is not a JSON object goes to ``problems`` and the rest are read."""
    path = check_file(path, max_bytes)
    if path.suffix == ".json":
        for n, record in enumerate(read_json(path, list, max_bytes)):
            if isinstance(record, dict):
                yield f"{path}: record {n}", record
            else:
                problems.append(f"{path}: record {n}: not a JSON object")
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{path}:{n}: not JSON ({e.msg})")
                continue
            if isinstance(record, dict):
                yield f"{path}:{n}", record
            else:
                problems.append(f"{path}:{n}: not a JSON object")


def need(record: dict, where: str, *keys: str) -> None:
    """Raise ValueError naming ``where`` and the keys of ``keys`` that ``record`` lacks (or has empty)."""
    missing = [k for k in keys if record.get(k) in (None, "", [])]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")


def box_in_image(box, width: float, height: float, where: str, slack: float = 1.0) -> list[float]:
    """``box`` [x0, y0, x1, y1] as floats, checked to lie inside a ``width`` × ``height`` image
    (within ``slack`` pixels: annotation tools round) with x0 < x1 and y0 < y1."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: box {box!r} is not four numbers") from None
    if not (-slack <= x0 < x1 <= width + slack and -slack <= y0 < y1 <= height + slack):
        raise ValueError(f"{where}: box {[x0, y0, x1, y1]} is outside its {width:g} × {height:g} image")
    return [max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))]


def bounded_lines(f, limit: int):
    """Lines of ``f`` (text or binary) without their line end; None for a line longer than ``limit``,
    which is consumed in chunks and never held whole."""
    while True:
        text = f.readline(limit + 1)
        if not text:
            return
        end = "\n" if isinstance(text, str) else b"\n"
        if len(text) > limit and not text.endswith(end):
            while text and not text.endswith(end):
                text = f.readline(1 << 20)
            yield None
            continue
        yield text.rstrip("\r\n" if isinstance(text, str) else b"\r\n")
