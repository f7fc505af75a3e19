"""``data.kind=memes``: Hateful-Memes-style image + text classification, for ``consistency`` (a
statement and its picture → does it hold / is it hateful?).

    data.path / data.val_path   train.jsonl / dev.jsonl ({"id", "img", "label", "text"})
    data.images                 the folder ``img`` is relative to (default: the jsonl's folder)

Evaluation (the ``consistency`` kind's): accuracy and AUROC next to the majority label; the text-only
and image-only baselines of the same size are the same run with ``objective.inputs=text`` / ``image``.
"""

from __future__ import annotations

import torch

from ...data.memes import read_memes
from ..region_task_data import Statements
from ..user_regions import Picture
from . import Source, register_source
from .region_files import REGION_SETTINGS, images_folder, split_setting, texts_about


def meme_statements(kind, split: str) -> Statements | None:
    path = split_setting(kind, split, "path")
    if path is None:
        return None
    memes, problems = read_memes(path, images_folder(kind, split))
    pictures = [Picture(m.id, m.image, where=f"{path}: meme {m.id}") for m in memes]
    texts, kept, more = texts_about(kind, pictures, list(range(len(memes))), [m.text for m in memes],
                                    [f"{path}: meme {m.id}" for m in memes], split)
    kind.report_skipped(problems + more, split)
    return Statements(texts, torch.tensor([memes[i].label for i in kept]), ["meme"] * len(kept))


register_source(Source("memes", "region_statements", meme_statements,
                       ("path", "val_path", "images", "val_images", *REGION_SETTINGS),
                       about="Hateful Memes jsonl (id, img, label, text) about your pictures"))
