"""Files of any modality → L2-normalised embeddings in one ImageBind space.

Sensor files are scaled the way the world recipe trained its encoders
(``data.world.sensor_inputs``): depth maps in metres, thermal maps in °C, IMU as m/s² and rad/s.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.world.sensor_inputs import world_sensor_input
from ..modalities.audio import audio_clips, load_audio
from ..modalities.image import ImageTransform
from ..modalities.imu import load_imu
from ..modalities.maps import load_map, resize_map
from ..modalities.pdf import pdf_pages
from ..modalities.text import load_tokenizer
from ..modalities.video import load_video
from ..models.imagebind import ImageBind
from ..weights import load_checkpoint
from ..weights.files import find_weights_file

# Search modality → the model encoder that embeds it (video goes through the image tower).
ENCODER = {"image": "image", "pdf": "image", "video": "image", "text": "text", "audio": "audio", "depth": "depth",
           "thermal": "thermal", "imu": "imu"}
AUDIO_CLIPS, VIDEO_CLIPS = 3, 4
MAX_TEXT_CHARS = 2000


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def embedder_for(store, model_dir: str | Path | None = None) -> "FileEmbedder":
    """The embedder of an index: its recorded model (or ``model_dir``), refused when it is not the
    model the index was built with."""
    meta = store.meta()
    embedder = FileEmbedder(model_dir or meta["model_path"])
    if embedder.model_id != meta["model_id"]:
        raise ValueError(f"{store.folder} was built with model {meta['model_id']}, not {embedder.model_id}")
    return embedder


class FileEmbedder:
    """An ImageBind model folder (tokenizer inside) that embeds files and query texts."""

    def __init__(self, model_dir: str | Path):
        self.model_dir = Path(model_dir)
        model = load_checkpoint(self.model_dir)
        if not isinstance(model, ImageBind):
            raise ValueError(f"{model_dir} holds a {type(model).__name__}; search needs an ImageBind model "
                             "(e.g. runs/imagebind-world/model from `polymodal bind`)")
        self.model = model.eval()
        self.config = model.config
        self.tokenizer = load_tokenizer(self.model_dir) if "text" in model.modalities else None
        self.transform = ImageTransform(self.config.image_size)
        self.model_id = sha256_of(find_weights_file(self.model_dir))[:16]

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m, enc in ENCODER.items() if enc in self.model.modalities)

    @property
    def dim(self) -> int:
        return self.config.embed_dim

    def load(self, path: str | Path, modality: str):
        """One file → the encoder's unbatched input (text: the string)."""
        c = self.config
        if modality not in self.modalities:
            raise ValueError(f"{path}: this model has no encoder for {modality} files")
        if modality == "image":
            return self.transform.load(path)
        if modality == "pdf":  # a query: the first page (the indexer embeds every page, see ingest)
            return self.transform(pdf_pages(path, c.image_size, max_pages=1)[0])
        if modality == "video":
            return load_video(path, VIDEO_CLIPS, c.video_frames, self.transform)
        if modality == "text":
            return Path(path).read_text(encoding="utf-8", errors="strict")[:MAX_TEXT_CHARS]
        if modality == "audio":
            seconds = ((c.audio_frames - 1) * 160 + 400) / 16000  # the span of audio_frames fbank frames
            return audio_clips(load_audio(path), seconds, AUDIO_CLIPS, c.audio_frames)
        if modality in ("depth", "thermal"):
            return world_sensor_input(modality, {modality: resize_map(load_map(path), c.map_size)}, c.audio_frames)
        return world_sensor_input("imu", {"imu": load_imu(path, c.imu_length)}, c.audio_frames)

    @torch.no_grad()
    def embed(self, modality: str, inputs: list) -> torch.Tensor:
        """Inputs of one modality (from :meth:`load`) → [N, E] L2-normalised."""
        if modality == "text":
            return self.embed_texts(inputs)
        x = torch.stack(inputs)
        return F.normalize(self.model.encode(ENCODER[modality], x, postprocess=False), dim=-1)

    @torch.no_grad()
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        if self.tokenizer is None:
            raise ValueError(f"{self.model_dir} has no text encoder/tokenizer")
        batch = self.tokenizer(texts, truncate=True)
        return F.normalize(self.model.encode("text", batch.ids, batch.attention_mask, postprocess=False), dim=-1)
