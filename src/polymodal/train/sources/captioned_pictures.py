"""A user's captioned pictures: ``data.kind=csv`` (a CSV/TSV of image paths and captions, as
open_clip's csv dataset) and ``data.kind=wds`` (WebDataset shards, streamed), for ``contrastive``."""

from __future__ import annotations

from ..config import ConfigError
from ..csv_data import read_pairs
from ..examples import CaptionPairs, CaptionStream
from ..wds_data import ShardBatches, StreamPlan, find_shards, read_shard_pairs, shard_captions, shard_sizes
from . import Source, register_source


def csv_pairs(kind, split: str) -> CaptionPairs | None:
    """``data.path`` (training) or ``data.val_path`` (validation: none, no retrieval metrics); rows
    with an unreadable picture or an empty caption are listed in ``skipped``."""
    d = kind.cfg.data
    path = d.path if split == "train" else d.val_path
    if split == "train" and not path:
        raise ConfigError(f"data.kind csv needs data.path (a CSV/TSV of {d.image_key}, {d.caption_key})")
    if not path:
        return None
    return CaptionPairs(*read_pairs(path, d.image_size, d.image_key, d.caption_key, d.allow_outside))


def wds_pairs(kind, split: str) -> CaptionStream | CaptionPairs | None:
    """Training: the shards of ``data.path``, streamed (``data.workers`` readers per process, a
    ``data.shuffle_buffer`` of samples, seeded by ``data.seed``). Validation: ``data.val_path``'s
    samples in memory, or none."""
    d, t = kind.cfg.data, kind.cfg.train
    if split != "train":
        return CaptionPairs(*read_shard_pairs(d.val_path, d.image_size)) if d.val_path else None
    if not d.path:
        raise ConfigError("data.kind wds needs data.path (a folder of WebDataset .tar shards)")
    shards = find_shards(d.path)
    plan = StreamPlan(shards, shard_sizes(shards), t.batch_size // kind.world_size, kind.world_size, d.workers,
                      d.seed, d.shuffle_buffer)
    plan.batches_per_stream(0)  # fail now if the shards cannot fill every stream
    return CaptionStream(lambda: ([c] for c in shard_captions(shards)),
                         lambda tokenizer, rank: ShardBatches(plan, tokenizer, d.image_size, rank))


register_source(Source("csv", "caption_pairs", csv_pairs, ("path", "val_path", "image_key", "caption_key", "image_size",
                                                          "allow_outside"),
                       about="a CSV/TSV of image paths and captions"))
register_source(Source("wds", "caption_pairs", wds_pairs,
                       ("path", "val_path", "workers", "shuffle_buffer", "seed", "image_size"),
                       streams=True, about="WebDataset shards of (image, caption) samples, streamed"))
