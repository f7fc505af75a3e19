"""World scenes for ImageBind's binding stage: each sensor modality as its encoder's input, and
the frozen embeddings it binds to (the scene's image, its video clip, its captions, its narration).

Everything frozen is embedded once here, so a binding step runs only the encoder being trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from .. import WorldDataset
from ..scene import Scene
from ..sensor_inputs import SENSORS, VIDEO_FRAMES, video_clips_of, world_sensor_input
from ...modalities.text import TextTokenizer
from ...tasks.embedder import Embedder
from ...models.imagebind import ImageBind
from ...train.data import normalize

@dataclass
class BindingData:
    """``n`` scenes: sensor inputs [n, ...] per modality and frozen, L2-normalised targets."""

    inputs: dict[str, torch.Tensor]
    image: torch.Tensor  # [n, E] image embeddings
    video: torch.Tensor  # [n, E] video-clip embeddings (the image tower's multi-frame path)
    captions: torch.Tensor  # [n, P, E] caption-paraphrase embeddings
    narration: torch.Tensor  # [n, E] embedding of the clip's narration (what the camera/objects do)
    scenes: list[Scene] = field(default_factory=list)
    caption_texts: list[list[str]] = field(default_factory=list)
    pan: torch.Tensor | None = None  # [n] camera pan direction: -1 left, 0 still, +1 right

    def __len__(self) -> int:
        return len(self.scenes)


def embed_texts(model: ImageBind, tokenizer: TextTokenizer, texts: list[str]) -> torch.Tensor:
    """Texts → [N, E] L2-normalised text embeddings."""
    return Embedder(model, tokenizer).embed_texts(texts)


def _collate(items: list[dict]) -> list[dict]:
    return items


@torch.no_grad()
def prepare(model: ImageBind, tokenizer: TextTokenizer, split: str, n: int, seed: int = 0,
            modalities: tuple[str, ...] = SENSORS, workers: int = 0, batch: int = 64,
            progress=None) -> BindingData:
    """Render ``n`` scenes of ``split`` and embed the frozen targets with ``model``'s vision and text
    encoders. ``progress(done, total)`` is called after each batch."""
    c = model.config
    wants = {"image", "caption", "video", "imu"} | set(modalities)
    dataset = WorldDataset(split, n, seed, image_size=c.image_size, modalities=tuple(sorted(wants)),
                           frames=VIDEO_FRAMES, audio_seconds=1.0)
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=_collate)
    inputs: dict[str, list] = {m: [] for m in modalities}
    image, video, scenes, captions, narration, pan = [], [], [], [], [], []
    was_training = model.training
    embedder = Embedder(model, tokenizer)  # the frozen towers in eval mode
    for items in loader:
        for m in modalities:
            inputs[m].append(torch.stack([world_sensor_input(m, it, c.audio_frames) for it in items]))
        image.append(embedder.embed("image", normalize(torch.stack([it["image"] for it in items]))))
        clips = torch.stack([video_clips_of(it["video"], c.video_frames) for it in items])  # [b, S, 3, k, H, W]
        video.append(embedder.embed("image", clips))
        for it in items:
            scenes.append(it["scene"])
            captions.append(it["captions"])
            narration.append(". ".join(seg["text"] for seg in it["narration"]) or "nothing moves")
            pan.append(_pan_direction(it["narration"]))
        if progress is not None:
            progress(len(scenes), n)
    p = len(captions[0])
    cap = embedder.embed_texts([t for row in captions for t in row]).view(n, p, -1)
    narration_emb = embedder.embed_texts(narration)
    model.train(was_training)
    return BindingData(
        inputs={m: torch.cat(v) for m, v in inputs.items()}, image=torch.cat(image), video=torch.cat(video),
        captions=cap, narration=narration_emb, scenes=scenes, caption_texts=captions, pan=torch.tensor(pan))


def _pan_direction(narration: list[dict]) -> int:
    for seg in narration:
        if seg["text"].startswith("the camera pans"):
            return 1 if seg["text"].endswith("right") else -1
    return 0
