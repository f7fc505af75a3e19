"""Files or tensors of any modality → L2-normalised embeddings, for every family with an embedding
space (CLIP: image and text; ImageBind: six encoders, plus video and PDF pages through its image
encoder).

A model folder carries everything this needs: the weights, the tokenizer files and the processor
(``processor_config.json``; without one, the family's official processing). Models provide
``modalities`` and ``embed(modality, x, attention_mask=None)`` → [B, E], not normalised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..devices import model_device, resolve, to_device
from ..layers.cpu_path import set_linear_path
from ..modalities.processor import Processor, processor_for
from ..modalities.registry import modality as modality_entry
from ..modalities.registry import modality_names
from ..modalities.text import VOCABULARY_FILES, TextTokenizer, load_tokenizer
from ..weights import load_checkpoint
from ..weights.files import find_weights_file, sha256_of
from .video_features import Backbone, image_tower_backbone, s3d_backbone
from .video_search import FRAME_TOWER, VideoClipper, frame_tower_record



class Embedder:
    """A model with its tokenizer and processor; embeds files, images, texts and ready tensors
    (without a processor, only texts and tensors: e.g. during training)."""

    def __init__(self, model: nn.Module, tokenizer: TextTokenizer | None, processor: Processor | None = None,
                 model_dir: Path | None = None, model_id: str | None = None):
        for needed in ("modalities", "embed"):
            if not hasattr(model, needed):
                raise ValueError(f"a {type(model).__name__} has no embedding space (it lacks .{needed})")
        self.model = model.eval()
        self.tokenizer, self.processor = tokenizer, processor
        self.model_dir, self.model_id = model_dir, model_id
        # A clip-level video model (VideoCLIP): video file → [(start, end, embedding)], one search item per clip.
        self.video_clips: Callable[[Path], list[tuple[float, float, torch.Tensor]]] | None = None
        # --backend onnxruntime|openvino: the towers run there (polymodal.export.runtime), the model
        # still answers for its config, modalities and scale.
        self.runtime = None
        self.cpu_path = "plain"  # or "packed": oneDNN prepacked linears (from_checkpoint decides)

    @classmethod
    def from_checkpoint(cls, path: str | Path, dtype: torch.dtype = torch.float32,
                        device: str | torch.device = "cpu", backend: str = "torch",
                        cpu_path: str | None = None) -> "Embedder":
        """The model at ``path`` (any supported layout) with the tokenizer and processor beside it.
        ``dtype=torch.bfloat16`` runs weights and activations in bf16 (≥ 2× faster on CPUs with
        AVX512-BF16/AMX; see docs/benchmarks.md); embeddings are returned in fp32 either way.
        ``device`` (``auto``/``cpu``/``cuda``/``cuda:N``) is where the model runs; embeddings come
        back on the CPU. ``backend`` ``onnxruntime`` / ``openvino`` runs the towers there instead
        (CPU; exported and verified on first use, then cached; openvino runs bf16 with ``dtype``).
        ``cpu_path`` (default ``$POLYMODAL_CPU_PATH`` or ``auto``): how a CPU model's linears run —
        ``auto`` measures PyTorch's GEMM against oneDNN with prepacked weights on this machine once
        (cached) and takes the faster; ``packed`` / ``plain`` force one (see
        :mod:`polymodal.layers.cpu_path`)."""
        from ..export.runtime import check_backend, exported_towers

        precision = "bf16" if dtype == torch.bfloat16 else "f32"
        check_backend(backend, precision)
        if backend != "torch" and resolve(device).type != "cpu":
            raise ValueError(f"backend {backend} runs on the CPU; use --device cpu (or --backend torch)")
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        model = load_checkpoint(path)
        if not hasattr(model, "embed"):
            raise ValueError(f"{path} holds a {type(model).__name__}, which has no embedding space to search")
        tokenizer = _find_tokenizer(folder, model) if "text" in model.modalities else None
        torch_dtype = dtype if backend == "torch" else torch.float32
        embedder = cls(model.to(resolve(device), torch_dtype), tokenizer, processor_for(model, folder), folder,
                       sha256_of(find_weights_file(path))[:16])
        if backend != "torch":
            embedder.runtime = exported_towers(embedder.model, embedder.model_id, backend, precision)
        elif embedder.device.type == "cpu":
            embedder.cpu_path = set_linear_path(embedder.model, cpu_path)
        if hasattr(model, "encode_video") and (folder / FRAME_TOWER).is_file():
            embedder.video_clips = VideoClipper(embedder.model, frame_backbone(folder))
        return embedder

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    @property
    def dim(self) -> int:
        return self.model.config.embed_dim

    @property
    def modalities(self) -> tuple[str, ...]:
        """The file modalities this model embeds (an encoder for it, and its processing known)."""
        return tuple(m for m in modality_names() if self._can_embed(modality_entry(m)))

    def _can_embed(self, m) -> bool:
        if m.name == "video" and self.video_clips is not None:
            return True
        if m.encoder not in self.model.modalities:
            return False
        if m.name == "text":
            return self.tokenizer is not None
        return all(getattr(self.processor, part, None) is not None for part in m.processing or (m.name,))

    @property
    def transform(self):
        """The image transform (PIL image → [3, S, S])."""
        return self.processor.image.transform()

    def load(self, path: str | Path, modality: str):
        """One file → its encoder's unbatched input (text: the string); raises naming the file."""
        if modality not in self.modalities:
            raise ValueError(f"{path}: this model has no encoder for {modality} files")
        return modality_entry(modality).read(Path(path), self.processor)

    @torch.no_grad()
    def embed(self, modality: str, inputs: list | torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Inputs of one modality (from :meth:`load`, or a batched tensor [N, ...]) → [N, E]
        L2-normalised, fp32, computed ``batch`` rows at a time."""
        if modality == "text":
            return self.embed_texts(inputs, batch=batch)
        encoder = modality_entry(modality).encoder
        x = inputs if isinstance(inputs, torch.Tensor) else torch.stack(inputs)
        return torch.cat([self.encode(encoder, x[i:i + batch]).cpu() for i in range(0, len(x), batch)])

    @torch.no_grad()
    def encode(self, encoder: str, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One batch through ``encoder`` on the model's device: [B, ...] (any device) → [B, E]
        L2-normalised fp32, on the model's device."""
        if self.runtime is not None and self.runtime.takes(encoder, x):  # else (e.g. ImageBind video) PyTorch
            return F.normalize(self.runtime.embed(encoder, x, attention_mask), dim=-1)
        device = self.device
        x = to_device(x, device)
        x = x.to(self.dtype) if x.is_floating_point() else x
        mask = to_device(attention_mask, device)
        out = self.model.embed(encoder, x, mask) if mask is not None else self.model.embed(encoder, x)
        return F.normalize(out.float(), dim=-1)

    @torch.no_grad()
    def embed_texts(self, texts: list[str], truncate: bool = True, batch: int = 256) -> torch.Tensor:
        """Texts → [N, E] L2-normalised (``truncate=False``: text longer than the context is an
        error); tokenised and encoded ``batch`` texts at a time."""
        if self.tokenizer is None:
            raise ValueError(f"{self.model_dir or 'this model'} has no text encoder or no tokenizer files beside it")
        out = []
        for i in range(0, len(texts), batch):
            tok = self.tokenizer(texts[i:i + batch], truncate=truncate)
            out.append(self.encode("text", tok.ids, tok.attention_mask).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def embed_images(self, images: list) -> torch.Tensor:
        """PIL images or image files → [N, E] L2-normalised."""
        transform = self.transform
        pixels = [transform.load(x) if isinstance(x, (str, Path)) else transform(x) for x in images]
        return self.embed("image", pixels)

    def scale(self) -> torch.Tensor:
        """The model's text–image logit scale (CLIP's temperature; ImageBind's text scale)."""
        return self.model.scale().float().cpu()




def _find_tokenizer(folder: Path, model: nn.Module) -> TextTokenizer | None:
    if not any((folder / n).is_file() for n in VOCABULARY_FILES):
        return None
    text = model.config.text
    context = getattr(text, "context_length", None) or getattr(text, "max_positions", None)
    tok = load_tokenizer(folder)
    return tok if tok.context_length <= context else load_tokenizer(folder, context)



def frame_backbone(model_dir: str | Path, s3d_weights: str | Path | None = None) -> Backbone:
    """The backbone whose per-second features the VideoCLIP in ``model_dir`` reads: S3D from
    ``s3d_weights`` when given, else the image tower named in the folder's ``frame_tower.json``."""
    if s3d_weights is not None:
        return video_backbone("s3d", s3d_weights)
    tower, fps = frame_tower_record(model_dir)
    return image_tower_backbone(Embedder.from_checkpoint(tower), fps=fps)


def video_backbone(name: str, weights: str | Path, fps: int | None = None, size: int | None = None,
                   bf16: bool = False) -> Backbone:
    """A frame backbone for ``polymodal video features``: ``s3d`` (MIL-NCE S3D-G weights; 30 fps,
    224 px by default) or ``clip`` (a polymodal model folder's image tower; 2 fps by default)."""
    if name == "s3d":
        model = load_checkpoint(weights)
        if type(model).__name__ != "S3D":
            raise ValueError(f"{weights} holds a {type(model).__name__}, not an S3D")
        chosen = s3d_backbone(model, fps or 30, size or 224, bf16=bf16)
        chosen.weights = str(Path(weights).resolve())
        return chosen
    if name == "clip":
        return image_tower_backbone(Embedder.from_checkpoint(weights), fps or 2)
    raise ValueError(f"--backbone must be s3d or clip, got {name!r}")
