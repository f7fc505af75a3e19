"""``data.kind=vcr``: VCR's jsonl about the user's pictures, for ``vcr``.

    data.path / data.val_path   train.jsonl / val.jsonl
    data.images                 VCR's ``vcr1images`` folder: each line's ``img_fn`` and ``metadata_fn``

Each item poses Q→A ("question [SEP] answer", four answers) and QA→R ("question answer [SEP]
rationale", four rationales); object references in the texts become the objects' names. The
regions are the whole picture and the objects' boxes (``data.boxes=truth``), a grid, a box file, or
``data.regions``. Evaluation (the ``vcr`` kind's): Q→A, QA→R and Q→AR accuracy (chance ¼, ¼, 1/16).
"""

from __future__ import annotations

import torch

from ...data.vcr import read_vcr
from ..config import ConfigError
from ..region_task_data import VCRItems
from ..user_regions import Picture
from . import Source, register_source
from .region_files import REGION_SETTINGS, fitting, images_folder, split_setting, texts_about


def vcr_items(kind, split: str) -> VCRItems | None:
    path = split_setting(kind, split, "path")
    if path is None:
        return None
    folder = images_folder(kind, split)
    if folder is None:
        raise ConfigError("data.kind vcr needs data.images (VCR's vcr1images folder, with each item's metadata_fn)")
    items, problems = read_vcr(path, folder)
    texts, whole = [], []
    for n, it in enumerate(items):
        right = it.answers[it.answer_label]
        mine = [f"{it.question} [SEP] {a}" for a in it.answers] + [f"{it.question} {right} [SEP] {r}" for r in it.rationales]
        if all(fitting(kind.tokenizer, mine)):
            whole.append(n)
            texts += mine
        else:
            problems.append(f"{path}: item {it.image.name} ({it.question!r}): a Q→A or QA→R text is longer than the "
                            f"context of {kind.tokenizer.context_length} tokens")
    items = [items[n] for n in whole]
    pictures, index = [], {}
    for it in items:  # items about one picture share its metadata, so its boxes
        if it.image not in index:
            index[it.image] = len(pictures)
            pictures.append(Picture(str(it.image.relative_to(folder).with_suffix("")), it.image, it.boxes,
                                    f"{path}: {it.image.name}"))
    picture_of = [index[it.image] for it in items for _ in range(8)]
    data, kept, more = texts_about(kind, pictures, picture_of, texts, [f"{path}: {t[:40]!r}" for t in texts], split)
    kind.report_skipped(problems + more, split)
    done = [k // 8 for k in kept[::8]]
    return VCRItems(data, torch.tensor([items[k].answer_label for k in done]),
                    torch.tensor([items[k].rationale_label for k in done]))


register_source(Source("vcr", "region_choices", vcr_items, ("path", "val_path", "images", "val_images", *REGION_SETTINGS),
                       about="VCR jsonl + metadata about your pictures"))
