"""Files into embeddings (what ``polymodal embed`` runs): pictures batched, each text line on its own
so that one over-long text fails alone; what cannot be read is reported by name and the rest kept."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fileio import atomic_write
from ..modalities.image import ImageReadError
from ..modalities.text import TruncationError

LINE_FILES = {".txt"}  # read as one text per non-empty line


@dataclass
class Embedded:
    """``vectors`` [N, E] float32, ``rows`` what each row is ({"file", "modality"[, "line", "text"]}),
    ``failed`` one "file[:line]: reason" per item that could not be embedded."""

    vectors: np.ndarray
    rows: list[dict] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def save(self, out: Path) -> None:
        """``out/embeddings.npy`` [N, E] and ``out/index.jsonl`` (one {"row", …} per line)."""
        out.mkdir(parents=True, exist_ok=True)

        def write_npy(tmp: str) -> None:
            with open(tmp, "wb") as f:  # a file object: np.save would add ".npy" to the temp name
                np.save(f, self.vectors.astype(np.float32))

        atomic_write(out / "embeddings.npy", write_npy)
        lines = "".join(json.dumps({"row": i, **meta}) + "\n" for i, meta in enumerate(self.rows))
        atomic_write(out / "index.jsonl", lambda tmp: Path(tmp).write_text(lines))


def embed_files(encoder, files: list[Path], batch_size: int = 32, truncate: bool = False) -> Embedded:
    """Embed pictures and ``.txt`` files (one text per non-empty line) with ``encoder`` (an
    :class:`~polymodal.tasks.embedder.Embedder`): pictures first, in batches, then the texts."""
    rows, vectors, failed = [], [], []
    images, texts = [], []
    for f in files:
        try:
            if f.suffix.lower() in LINE_FILES:
                lines = [(i, t.strip()) for i, t in enumerate(f.read_text(encoding="utf-8").splitlines()) if t.strip()]
                texts += [({"file": str(f), "line": i + 1, "modality": "text", "text": t}, t) for i, t in lines]
            else:  # to the tower's input size now: a batch never holds the decoded pictures themselves
                images.append(({"file": str(f), "modality": "image"}, encoder.transform.load(f)))
        except (ImageReadError, OSError, UnicodeDecodeError) as e:
            failed.append(str(e) if str(f) in str(e) else f"{f}: {e}")
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        vectors.append(encoder.embed("image", [pixels for _, pixels in chunk]).numpy())
        rows += [meta for meta, _ in chunk]
    for meta, text in texts:  # one at a time so that one over-long text fails alone
        try:
            vectors.append(encoder.embed_texts([text], truncate=truncate).numpy())
            rows.append(meta)
        except (TruncationError, ValueError) as e:
            failed.append(f"{meta['file']}:{meta['line']}: {e}")
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, encoder.dim), np.float32)
    return Embedded(matrix, rows, failed)
