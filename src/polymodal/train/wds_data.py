"""(image, caption) pairs streamed from WebDataset shards, split across ranks and DataLoader
workers without duplicates, in an order that is a pure function of (seed, step) — so a resumed
run sees exactly the batches an uninterrupted one would.

Layout of an epoch. The shard list is shuffled with (seed, epoch); stream ``r·W + w`` of the
``world_size·W`` streams (rank r, worker w) reads every ``world_size·W``-th shard of it, passes its samples
through a seeded shuffle buffer and cuts them into per-rank batches. Every stream stops after the
same number of batches (the fewest any stream can fill), so ranks take the same number of steps;
the DataLoader takes batches from its workers round-robin, so batch k of an epoch on a rank comes
from worker ``k mod W``. Resuming at batch k rotates the workers so that the first batch is
k's, and each worker skips its earlier batches without decoding them.

Samples: an image (``png``/``jpg``/``jpeg``/``webp``) and a caption (``txt``, or the ``json``'s
``captions`` list — a world shard — or ``caption``). Undecodable or caption-less samples are
reported with their shard and key and skipped; they never stop a run.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import webdataset as wds
from PIL import Image

from ..modalities.image import square_uint8, to_rgb
from ..modalities.text import TextTokenizer
from .config import ConfigError

IMAGE_EXTS = ("png", "jpg", "jpeg", "webp")


def find_shards(path: str | Path) -> list[Path]:
    """Shards of ``path``: a folder (every ``*.tar`` in it, sorted) or one ``.tar`` file."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(f"data.path {path} is neither a folder of .tar shards nor a .tar file")
    shards = sorted(path.glob("*.tar"))
    if not shards:
        raise ConfigError(f"data.path {path} holds no .tar shards")
    return shards


def shard_sizes(shards: list[Path]) -> list[int]:
    """Samples per shard, from the tar headers only (one sample = one key)."""
    sizes = []
    for shard in shards:
        try:
            with tarfile.open(shard) as tar:
                sizes.append(len({m.name.split("/")[-1].split(".")[0] for m in tar if m.isfile()}))
        except (tarfile.TarError, OSError) as e:
            raise ConfigError(f"shard {shard} is not a readable tar file: {e}") from e
    return sizes


def shard_captions(shards: list[Path]) -> Iterator[str]:
    """Every caption in the shards, without decoding images (to train a tokenizer)."""
    for record in _records(shards):
        yield from _captions(record)


def _records(shards: list[Path]) -> Iterator[dict]:
    """Raw records of ``shards`` in order. We split shards across ranks and workers ourselves, so
    WebDataset's own node/worker splitting is turned off."""
    yield from wds.WebDataset([str(s) for s in shards], shardshuffle=False, empty_check=False,
                              nodesplitter=None, workersplitter=None)


def _captions(record: dict) -> list[str]:
    if "txt" in record:
        return [record["txt"].decode("utf-8").strip()]
    if "json" in record:
        meta = json.loads(record["json"])
        found = meta.get("captions") or ([meta["caption"]] if meta.get("caption") else [])
        return [c.strip() for c in found]
    return []


def _sample(record: dict, size: int) -> tuple[list[str], torch.Tensor]:
    """(caption options, image uint8 [3, S, S]) of a record; ValueError/PIL errors when unusable."""
    options = _captions(record)
    if not options:
        raise ValueError("no caption (.txt or json captions/caption)")
    return options, _image(record, size)


def _image(record: dict, size: int) -> torch.Tensor:
    """The record's image → uint8 [3, S, S] (shorter side resized, centre crop)."""
    ext = next((e for e in IMAGE_EXTS if e in record), None)
    if ext is None:
        raise ValueError(f"no image (.{'/.'.join(IMAGE_EXTS)})")
    with Image.open(io.BytesIO(record[ext])) as img:
        img.load()
        return square_uint8(to_rgb(img), size)


def read_shard_pairs(path: str | Path, image_size: int) -> tuple[torch.Tensor, list[list[str]], list[str]]:
    """Every sample of the shards at ``path`` in memory (a validation set): (images uint8
    [N, 3, S, S], captions [N][P], skipped ["shard key: reason", …])."""
    images, texts, skipped = [], [], []
    for shard in find_shards(path):
        for record in _records([shard]):
            try:
                options, pixels = _sample(record, image_size)
                images.append(pixels)
                texts.append(options)
            except Exception as e:  # noqa: BLE001 — any bad sample is reported and skipped
                skipped.append(f"{shard.name} {record.get('__key__', '?')}: {e}")
    if not images:
        raise ConfigError(f"{path}: no readable (image, caption) sample ({len(skipped)} skipped)")
    return torch.stack(images), texts, skipped


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


@dataclass
class StreamPlan:
    """Which shards each (rank, worker) stream reads in an epoch, and how many batches each gives."""

    shards: list[Path]
    sizes: list[int]
    batch: int  # per-rank batch
    world_size: int
    workers: int  # DataLoader workers per rank (0: the main process reads, as one stream)
    seed: int
    buffer: int  # shuffle buffer, in samples

    @property
    def per_rank(self) -> int:
        return max(self.workers, 1)

    def stream_shards(self, epoch: int, rank: int, worker: int) -> list[int]:
        order = list(range(len(self.shards)))
        random.Random(_seed(self.seed, "shards", epoch)).shuffle(order)
        return order[rank * self.per_rank + worker::self.world_size * self.per_rank]

    def batches_per_stream(self, epoch: int) -> int:
        """The fewest batches any stream of ``epoch`` fills: every stream gives that many."""
        n = min(sum(self.sizes[i] for i in self.stream_shards(epoch, r, w)) // self.batch
                for r in range(self.world_size) for w in range(self.per_rank))
        if n == 0:
            raise ConfigError(f"{len(self.shards)} shard(s) ({sum(self.sizes)} samples) cannot give each of the "
                              f"{self.world_size * self.per_rank} streams (processes × workers) a batch of {self.batch} "
                              f"in epoch {epoch}: use fewer workers or processes, a smaller batch or more shards")
        return n

    def locate(self, step: int) -> tuple[int, int]:
        """Global step → (epoch, batch index within the epoch)."""
        epoch = 0
        while step >= (n := self.batches_per_stream(epoch) * self.per_rank):
            step, epoch = step - n, epoch + 1
        return epoch, step


class ShardStream(torch.utils.data.IterableDataset):
    """One rank's batches of one epoch from batch ``start`` on: dicts with ``pixels`` uint8
    [b, 3, S, S], ``ids``/``mask`` [b, L], ``keys`` and ``skipped`` ("shard key: reason")."""

    def __init__(self, plan: StreamPlan, tokenizer: TextTokenizer, image_size: int, epoch: int, rank: int,
                 start: int = 0):
        self.plan, self.tokenizer, self.size = plan, tokenizer, image_size
        self.epoch, self.rank, self.start = epoch, rank, start

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        workers = self.plan.per_rank
        # The DataLoader starts with its worker 0, so worker 0 plays the stream of batch ``start``.
        worker = ((info.id if info else 0) + self.start) % workers
        first = self.start // workers + (1 if worker < self.start % workers else 0)
        per_stream = self.plan.batches_per_stream(self.epoch)
        batches = self._batches(worker)
        for k in range(per_stream):
            pairs, skipped = next(batches)
            if k >= first:
                yield self._collate(pairs, skipped)

    def _samples(self, worker: int) -> Iterator[tuple[tuple | None, str | None]]:
        """This stream's decoded samples ((key, pixels, caption), None) after the shuffle buffer,
        and (None, "shard key: reason") for each bad one."""
        rng = random.Random(_seed(self.plan.seed, "buffer", self.epoch, self.rank, worker))
        buffer = []
        for i in self.plan.stream_shards(self.epoch, self.rank, worker):
            shard = self.plan.shards[i]
            for record in _records([shard]):
                buffer.append((shard.name, record))
                if len(buffer) >= self.plan.buffer:
                    yield self._decode(*buffer.pop(rng.randrange(len(buffer))))
        rng.shuffle(buffer)
        for item in buffer:
            yield self._decode(*item)

    def _batches(self, worker: int) -> Iterator[tuple[list, list]]:
        """Endless batches of good samples; bad samples are left out (and reported), and a stream
        that runs short starts over, so every stream fills its share of batches."""
        pairs, skipped, good = [], [], 0
        while True:
            for sample, problem in self._samples(worker):
                if problem:
                    skipped.append(problem)
                    continue
                good += 1
                pairs.append(sample)
                if len(pairs) == self.plan.batch:
                    yield pairs, skipped
                    pairs, skipped = [], []
            if good == 0:
                raise RuntimeError(f"no usable sample in the shards of stream {worker} (rank {self.rank}, epoch "
                                   f"{self.epoch}): {skipped[:3]}")

    def _decode(self, shard: str, record: dict) -> tuple[tuple | None, str | None]:
        key = record.get("__key__", "?")
        try:
            options, pixels = _sample(record, self.size)
        except Exception as e:  # noqa: BLE001 — any bad sample is reported and skipped
            return None, f"{shard} {key}: {e}"
        # Paraphrases rotate with the epoch, as in the in-memory world data.
        return (key, pixels, options[(self.epoch + _seed(key)) % len(options)]), None

    def _collate(self, pairs: list[tuple], skipped: list[str]) -> dict:
        keys, pixels, texts = zip(*pairs)
        tokens = self.tokenizer(list(texts), truncate=True)
        return {"pixels": torch.stack(pixels), "ids": tokens.ids, "mask": tokens.attention_mask,
                "keys": list(keys), "skipped": skipped}


class ShardBatches:
    """This rank's batch of global step ``step``; one DataLoader per epoch, reopened on a jump."""

    def __init__(self, plan: StreamPlan, tokenizer: TextTokenizer, image_size: int, rank: int):
        self.plan, self.tokenizer, self.size, self.rank = plan, tokenizer, image_size, rank
        self._iter, self._next = None, None  # the open epoch's iterator and the (epoch, k) it gives next

    def get(self, step: int) -> dict:
        epoch, k = self.plan.locate(step)
        if self._iter is None or self._next != (epoch, k):
            stream = ShardStream(self.plan, self.tokenizer, self.size, epoch, self.rank, start=k)
            self._iter = iter(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=self.plan.workers))
        batch = next(self._iter)
        self._next = (epoch, k + 1)  # past the epoch's end this matches no step: a new epoch reopens
        return batch
