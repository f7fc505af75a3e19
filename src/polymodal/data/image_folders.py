"""Pictures sorted into one folder per class, as ImageNet and torchvision's ``ImageFolder`` keep them:
``ROOT/CLASS/…/picture.jpg``. Only regular files inside ROOT are read (links are not followed out
of it); a picture that cannot be read is listed with its reason and the rest are kept."""

from __future__ import annotations

from pathlib import Path

import torch

from ..modalities.image import IMAGE_SUFFIXES, ImageReadError, load_image, square_uint8


class ImageFolderError(ValueError):
    """A folder that is not ROOT/CLASS/pictures; the message names it."""


def image_class_folders(root: str | Path) -> list[tuple[Path, str]]:
    """(picture file, class) for every picture under ``root/CLASS/``, sorted by class then path."""
    root = Path(root)
    if not root.is_dir():
        raise ImageFolderError(f"{root}: not a folder of CLASS/ sub-folders")
    inside = root.resolve()
    files = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        for f in sorted(folder.rglob("*")):
            if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() and not f.is_symlink() \
                    and f.resolve().is_relative_to(inside):
                files.append((f, folder.name))
    if not files:
        raise ImageFolderError(f"{root}: no CLASS/ sub-folders with pictures ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_image_folders(root: str | Path, size: int, classes: list[str] | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Every picture under ``root/CLASS/`` at ``size`` px → (images uint8 [N, 3, S, S], labels int64
    [N], class names, skipped ["file: reason", …]). ``classes`` (the training classes, when reading
    validation pictures) fixes the labels' order; a picture of another class is skipped."""
    found = image_class_folders(root)
    classes = list(classes) if classes is not None else sorted({c for _, c in found})
    images, labels, skipped = [], [], []
    for file, name in found:
        if name not in classes:
            skipped.append(f"{file}: class {name!r} is not one of the training classes {classes}")
            continue
        try:
            images.append(square_uint8(load_image(file), size))
        except ImageReadError as e:
            skipped.append(str(e))
            continue
        labels.append(classes.index(name))
    if not images:
        raise ImageFolderError(f"{root}: no readable pictures ({len(skipped)} skipped)")
    return torch.stack(images), torch.tensor(labels), classes, skipped
