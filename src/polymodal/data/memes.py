"""Hateful Memes files: ``train.jsonl`` / ``dev.jsonl`` beside an ``img/`` folder.

    {"id": 42953, "img": "img/42953.png", "label": 0, "text": "its their character not their color that matters"}

``label`` 1: the meme is hateful (the picture and its text together; either alone may be benign).
The picture is found relative to the folder the user names (by default the jsonl's own). Every bad
line (no text, no label, a picture that is missing or outside that folder) is reported with file and
line; the rest load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .image_files import file_inside
from .records import jsonl_records, need


@dataclass(frozen=True)
class Meme:
    id: str
    image: Path
    text: str
    label: int  # 1: hateful


def read_memes(path: str | Path, images: str | Path | None = None) -> tuple[list[Meme], list[str]]:
    """The labelled memes of a Hateful-Memes jsonl → (memes, problems: one line per bad line).
    ``images``: the folder ``img`` is relative to (default: the jsonl's folder)."""
    root = Path(images) if images is not None else Path(path).parent
    problems: list[str] = []
    memes = []
    for where, record in jsonl_records(path, problems):
        try:
            need(record, where, "id", "img", "text")
            if record.get("label") not in (0, 1):
                raise ValueError(f"{where}: label {record.get('label')!r} is not 0 or 1 (a test file has none)")
            if not str(record["text"]).strip():
                raise ValueError(f"{where}: the meme has no text")
            memes.append(Meme(str(record["id"]), file_inside(root, record["img"], where), str(record["text"]),
                              int(record["label"])))
        except ValueError as e:
            problems.append(str(e))
    return memes, problems
