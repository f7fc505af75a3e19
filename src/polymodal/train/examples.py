"""What sources give and kinds consume: one name per kind of examples (``TrainKind.examples`` and
``Source.examples``), and the containers of the picture-level ones. The region, video and document
containers live beside the batches that read them (``region_data``, ``region_task_data``,
``howto_data``, :mod:`polymodal.data.documents`).

===============================  =========================================================  ======================
examples                         container                                                  kinds
===============================  =========================================================  ======================
caption_pairs                    :class:`CaptionPairs` (in memory) or :class:`CaptionStream`  contrastive
labelled_images                  :class:`LabelledImages`                                     classification
region_captions                  ``region_data.RegionCaptions``                              mlm_itm
region_captions_with_classes     ``RegionCaptions`` with ``region_targets``                  masked_multimodal
region_questions                 ``region_data.RegionQuestions``                             vqa
region_statements                ``region_task_data.Statements``                             consistency
region_references                ``region_task_data.References``                             refexp
region_choices                   ``region_task_data.VCRItems``                               vcr
document_pages                   :class:`DocumentPages`                                      doc_*
timed_video_text                 ``howto_data.HowToFeatures``                                videoclip
video_questions                  ``HowToFeatures`` with ``questions``                        video_mc
===============================  =========================================================  ======================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch


@dataclass
class CaptionPairs:
    """(picture, caption) pairs held in memory: ``images`` uint8 [N, 3, S, S], ``texts`` [N][P]
    (P paraphrases per picture), the rows that could not be read (``skipped``, "file: reason"), and
    optionally each picture's hard-negative group [N] with the run length ``group_size``."""

    images: torch.Tensor
    texts: list[list[str]]
    skipped: list[str] = field(default_factory=list)
    groups: torch.Tensor | None = None
    group_size: int = 0


@dataclass
class CaptionStream:
    """(picture, caption) pairs too many to hold: ``captions()`` iterates every caption once (for a
    tokenizer), ``batches(tokenizer, rank)`` gives the object whose ``get(step)`` is this rank's
    batch of a step ({"pixels" uint8 [B, 3, S, S], "ids" / "mask" [B, L], "skipped"})."""

    captions: Callable[[], Iterable[str]]
    batches: Callable


@dataclass
class LabelledImages:
    """Pictures with one class each: ``images`` uint8 [N, 3, S, S], ``labels`` int64 [N] indexing
    ``classes``, and the pictures that could not be read (``skipped``, "file: reason")."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list
    skipped: list[str] = field(default_factory=list)


class DocumentPages(list):
    """Document pages: a list of :class:`~polymodal.data.documents.DocumentExample`, and the document
    classes in the order a classifier's head uses them, where the source names them (else None)."""

    def __init__(self, pages=(), classes: list[str] | None = None):
        super().__init__(pages)
        self.classes = classes
