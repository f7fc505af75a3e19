"""A search query as one vector: text and/or a file of any modality, plus embedding arithmetic
(``+`` files or texts, ``-`` texts), each part L2-normalised before summing, as in ImageBind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..tasks.embedder import Embedder
from ..weights.files import sha256_of
from .detect import detect


def embedder_for(store, model_dir: str | Path | None = None, trust_torchscript: bool = False,
                 device: str = "cpu", backend: str = "torch") -> Embedder:
    """The embedder of an index: ``model_dir``, or else the model path the index records.

    The index's metadata may come from someone else, so the weights file is hashed and checked
    against the index's ``model_id`` *before* it is loaded, and a TorchScript archive (code) is
    refused unless ``trust_torchscript``. ``device``: where the model runs (see :mod:`polymodal.devices`);
    ``backend``: torch, onnxruntime or openvino (see :mod:`polymodal.export.runtime`).
    """
    from ..weights.files import find_weights_file, trust_torchscript as allowing

    meta = store.meta()
    path = Path(model_dir or meta["model_path"])
    found = sha256_of(find_weights_file(path))[:16]
    if found != meta["model_id"]:
        raise ValueError(f"{store.folder} was built with model {meta['model_id']}, not {found} ({path})")
    with allowing(trust_torchscript):
        return Embedder.from_checkpoint(path, device=device, backend=backend)


def embed_file(embedder: Embedder, path: str | Path, modality: str | None = None) -> torch.Tensor:
    """One file → [E] (normalised); ``modality`` overrides content detection."""
    modality = modality or detect(path)
    return embedder.embed(modality, [embedder.load(path, modality)])[0]


def query_vector(embedder: Embedder, text: str | None = None, files: list[str | Path] = (),
                 plus: list[str] = (), minus: list[str] = (), modality: str | None = None) -> np.ndarray:
    """Sum of the parts' embeddings, normalised: [E] float32. ``plus`` items are files when such a
    file exists, else texts; ``minus`` items are texts (or files) subtracted."""
    parts: list[torch.Tensor] = []
    if text:
        parts.append(embedder.embed_texts([text])[0])
    parts += [embed_file(embedder, f, modality) for f in files]

    def one(item: str) -> torch.Tensor:
        return embed_file(embedder, item) if Path(item).is_file() else embedder.embed_texts([item])[0]

    parts += [one(p) for p in plus]
    negative = [one(m) for m in minus]
    if not parts:
        raise ValueError("a query needs text, a file or a --plus item")
    total = torch.stack(parts).sum(0) - (torch.stack(negative).sum(0) if negative else 0)
    return F.normalize(total, dim=-1).numpy().astype(np.float32)
