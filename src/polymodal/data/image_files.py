"""Finding the picture an annotation names, inside the folder the user named and nowhere else:
by a relative file name (VCR's ``img_fn``, Hateful Memes' ``img``, a RefCOCO table's ``image``) or by
an image id, as COCO names its files (``COCO_train2014_000000000009.jpg``, ``000000000009.jpg``) or
as ``9.jpg`` / ``9.png``."""

from __future__ import annotations

import re
from pathlib import Path

from ..modalities.image import IMAGE_SUFFIXES

TRAILING_NUMBER = re.compile(r"(?:.*_)?0*(\d+)$")


def file_inside(root: str | Path, name: str, where: str) -> Path:
    """``root/name`` as a regular file that really lies inside ``root`` (no ``..``, absolute path or
    link out of it); ValueError naming ``where`` otherwise."""
    root = Path(root)
    path = root / str(name)
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{where}: {name!r} lies outside {root}")
    if not path.is_file():
        raise ValueError(f"{where}: {name!r} not found in {root}")
    return path


class ImagesById:
    """The pictures of one folder (not its sub-folders; links out of it are ignored) by image id: a
    file's stem, and the number its stem ends with (leading zeros dropped)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ValueError(f"{self.folder}: not a folder of images")
        inside = self.folder.resolve()
        self.by_id: dict[str, Path] = {}
        for f in sorted(self.folder.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES or not f.is_file() or not f.resolve().is_relative_to(inside):
                continue
            self.by_id.setdefault(f.stem, f)
            if m := TRAILING_NUMBER.match(f.stem):
                self.by_id.setdefault(m.group(1), f)

    def __len__(self) -> int:
        return len(set(self.by_id.values()))

    def get(self, image_id: int | str) -> Path | None:
        key = str(image_id)
        return self.by_id.get(key) or (self.by_id.get(str(int(key))) if key.isdigit() else None)
