"""A user's labelled pictures: ``data.kind=folders`` for ``classification`` — ``data.path`` (and
``data.val_path``) holding one sub-folder of pictures per class (ImageNet / ``ImageFolder`` style)."""

from __future__ import annotations

from ...data.image_folders import ImageFolderError, image_class_folders, read_image_folders
from ..config import ConfigError
from ..examples import LabelledImages
from . import Source, register_source


def image_folders(kind, split: str) -> LabelledImages | None:
    """Training: the classes are ``data.path``'s sub-folders, sorted. Validation: ``data.val_path``
    read with the training classes, or none (no metrics)."""
    d = kind.cfg.data
    if not d.path:
        raise ConfigError("data.kind folders needs data.path: a folder of CLASS/ sub-folders of pictures")
    try:
        if split == "train":
            return LabelledImages(*read_image_folders(d.path, d.image_size))
        if not d.val_path:
            return None
        classes = getattr(kind, "classes", None) or sorted({c for _, c in image_class_folders(d.path)})
        return LabelledImages(*read_image_folders(d.val_path, d.image_size, classes))
    except ImageFolderError as e:
        raise ConfigError(str(e)) from None


register_source(Source("folders", "labelled_images", image_folders, ("path", "val_path", "image_size"),
                       about="pictures in one sub-folder per class"))
