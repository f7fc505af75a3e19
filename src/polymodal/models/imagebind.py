"""ImageBind (Girdhar et al.): one encoder per modality, all bound into the image's embedding space.

Per modality: preprocessor (stem) → trunk → head (norm, CLS/EOT token, projection) →
postprocessor (L2 normalise, then a logit scale: learnable for text, fixed for the others). The
scale doubles as each modality's contrastive temperature against unit-norm image embeddings.

Inputs of a modality may carry an extra clip axis S right after the batch axis (video
[B, S, 3, T, H, W], audio [B, S, 1, mel, frames], …): the clips run as B·S samples through the
whole pipeline, postprocessor included, and their outputs are averaged (not re-normalised).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..modalities.registry import encoder_input_dims
from ..modalities.registry import modality as modality_entry
from ..registry import build, register_config, register_family, register_preset
from .bert import BertConfig
from .modality_transformer import ModalityTransformer
from .text_transformer import TextTransformerConfig

MODALITIES = ("image", "text", "audio", "depth", "thermal", "imu")


@register_config("imagebind-tower")
@dataclass
class TowerConfig:
    width: int
    layers: int
    heads: int
    drop_path: float = 0.0


@dataclass
class ImageBindConfig:
    """Sizes default to ``imagebind_huge``. A modality whose tower is None is left out."""

    embed_dim: int = 1024
    image: TowerConfig | None = field(default_factory=lambda: TowerConfig(1280, 32, 16))
    text: TextTransformerConfig | BertConfig | None = field(default_factory=lambda: TextTransformerConfig(
        vocab_size=49408, context_length=77, width=1024, layers=24, heads=16, mlp_hidden=4096, eps=1e-6,
        output_dim=1024))  # ImageBind's own causal tower, or a BERT tower (e.g. a CLIP's MiniLM)
    audio: TowerConfig | None = field(default_factory=lambda: TowerConfig(768, 12, 12, drop_path=0.1))
    depth: TowerConfig | None = field(default_factory=lambda: TowerConfig(384, 12, 8))
    thermal: TowerConfig | None = field(default_factory=lambda: TowerConfig(768, 12, 12))
    imu: TowerConfig | None = field(default_factory=lambda: TowerConfig(512, 6, 8, drop_path=0.7))
    # Geometry of each stem.
    image_size: int = 224
    image_patch: int = 14
    video_frames: int = 2  # frames per tubelet; an image is repeated this many times
    image_stem: str = "patch"  # "patch" (Conv3d tubelets) or "conv" (a CLIP's ConvStem per frame, frames averaged)
    image_stem_channels: tuple[int, ...] = (32, 64, 128)
    audio_mel_bins: int = 128
    audio_frames: int = 204
    audio_patch: int = 16
    audio_stride: int = 10
    map_size: int = 224  # depth and thermal
    depth_patch: int = 16
    thermal_patch: int = 16
    imu_length: int = 2000
    imu_patch: int = 8
    imu_head_dropout: float = 0.5
    eps: float = 1e-6  # trunk and head LayerNorms (the stems' LayerNorms use 1e-5)
    # Postprocessing: fixed logit scales per modality; text's is learnable, starting at 1/0.07.
    scales: dict[str, float] = field(default_factory=lambda: {"audio": 20.0, "depth": 5.0, "thermal": 10.0,
                                                              "imu": 5.0})
    text_scale_init: float = math.log(1 / 0.07)
    text_scale_max: float = 100.0

    LEGACY_KEYS = ("text_type",)  # written by version 1 configs; the text config's own type says it now
    RENAMED_KEYS = {"vision": "image", "vision_patch": "image_patch", "vision_stem": "image_stem",
                    "vision_stem_channels": "image_stem_channels"}  # version 1 names

    def __post_init__(self):
        self.image_stem_channels = tuple(self.image_stem_channels)
        if self.text is not None and self.text.output_dim != self.embed_dim:
            raise ValueError(f"text output_dim {self.text.output_dim} must equal embed_dim {self.embed_dim}")

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if getattr(self, m) is not None)


def with_clip_towers(config: ImageBindConfig, clip_config) -> ImageBindConfig:
    """``config`` with its vision and text towers (and embedding size, image geometry, LayerNorm
    eps) replaced by those of a CLIP (``CLIPConfig``) whose towers will be bound to. Depth and
    thermal maps are taken to be registered to the camera, so ``map_size`` becomes its image size."""
    import dataclasses

    v = clip_config.vision
    if (v.pool != "cls" or not v.pre_norm or (v.stem == "patch" and v.patch_bias)
            or v.output_dim != clip_config.embed_dim):
        raise ValueError("only CLIP image towers with ln_pre, CLS pooling, a bias-free patch embedding (or a "
                         "conv stem) and a projection map onto ImageBind's vision encoder")
    return dataclasses.replace(
        config, embed_dim=clip_config.embed_dim, image=TowerConfig(v.width, v.layers, v.heads),
        text=clip_config.text,
        image_size=v.image_size, image_patch=v.patch_size, map_size=v.image_size, eps=v.eps,
        image_stem=v.stem, image_stem_channels=tuple(v.stem_channels))


class Postprocessor(nn.Module):
    """L2-normalise, then multiply by exp(log_logit_scale) (clamped at ``max_scale`` when learnable).

    The scale is a Parameter when learnable (text), else a buffer saved with the weights."""

    def __init__(self, scale: float | None, learnable: bool = False, max_scale: float = 100.0):
        super().__init__()
        self.max_scale = max_scale
        if scale is None:
            self.log_logit_scale = None
        elif learnable:
            self.log_logit_scale = nn.Parameter(torch.tensor(float(scale)))
        else:
            self.register_buffer("log_logit_scale", torch.tensor(math.log(scale)))
        self.learnable = learnable

    def scale(self) -> torch.Tensor | None:
        if self.log_logit_scale is None:
            return None
        s = self.log_logit_scale.exp()
        return s.clamp(max=self.max_scale) if self.learnable else s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(x, dim=-1)
        s = self.scale()
        return x if s is None else x * s


def build_encoder(config: ImageBindConfig, modality: str) -> nn.Module:
    """The (stem → trunk → head) encoder of one modality, before postprocessing. The stem comes
    from the modality's registry entry; the trunk is ImageBind's: LayerNorm before the blocks for
    images, one learned extra key/value per block for the sensors."""
    c = config
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
    if modality == "text":
        return build(c.text)
    t: TowerConfig = getattr(c, modality)
    stem, num_tokens = modality_entry(modality).stem(c, t.width)
    trunk = dict(pre_norm=True) if modality == "image" else dict(add_bias_kv=True)
    return ModalityTransformer(stem, num_tokens, t.width, t.layers, t.heads, c.embed_dim, drop_path=t.drop_path,
                               eps=c.eps, head_dropout=getattr(c, f"{modality}_head_dropout", 0.0), **trunk)


class ImageBind(nn.Module):
    """``encoders[m]`` (input → [B, E]) and ``postprocessors[m]`` for each modality m.

    ``model({"image": images, "audio": clips})`` → ``{"image": [B, E], "audio": [B, E]}``.
    """

    def __init__(self, encoders: dict[str, nn.Module], postprocessors: dict[str, Postprocessor],
                 config: ImageBindConfig | None = None):
        super().__init__()
        if set(encoders) != set(postprocessors):
            raise ValueError(f"encoders {sorted(encoders)} and postprocessors {sorted(postprocessors)} differ")
        self.config = config
        self.encoders = nn.ModuleDict(encoders)
        self.postprocessors = nn.ModuleDict(postprocessors)

    @classmethod
    def from_config(cls, config: ImageBindConfig) -> "ImageBind":
        encoders = {m: build_encoder(config, m) for m in config.modalities}
        post = {m: Postprocessor(config.text_scale_init, learnable=True, max_scale=config.text_scale_max)
                if m == "text" else Postprocessor(config.scales.get(m)) for m in config.modalities}
        return cls(encoders, post, config)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoders)

    def _check(self, modality: str) -> None:
        if modality not in self.encoders:
            raise KeyError(f"this model has no {modality!r} encoder; it has: {', '.join(self.encoders)}")

    def encode(self, modality: str, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
               postprocess: bool = True) -> torch.Tensor:
        """One modality's input → [B, E] (``postprocess=False``: the head output, before L2 norm/scale).

        Inputs with a clip axis ([B, S, ...], see the module docstring) are averaged over S.
        """
        self._check(modality)
        clips = x.dim() == max(encoder_input_dims(modality)) + 2  # one more than a batch of samples
        b, s = x.shape[:2]
        if clips:
            x = x.reshape(b * s, *x.shape[2:])
            if attention_mask is not None:
                attention_mask = attention_mask.reshape(b * s, -1)
        encoder = self.encoders[modality]
        out = encoder(x, attention_mask) if modality == "text" else encoder(x)
        if postprocess:
            out = self.postprocessors[modality](out)
        return out.reshape(b, s, -1).mean(1) if clips else out

    def scale(self) -> torch.Tensor:
        """The text postprocessor's (learnable) logit scale, which compares text with every modality."""
        return self.postprocessors["text"].scale()

    def embed(self, modality: str, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One modality's batch → [B, E], the head output before normalisation and scale (the
        interface every embedding family shares with :class:`polymodal.tasks.Embedder`)."""
        return self.encode(modality, x, attention_mask, postprocess=False)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{modality: input}`` → ``{modality: [B, E]}``, normalised and scaled per modality."""
        return {m: self.encode(m, x) for m, x in inputs.items()}


def imagebind_from_clip(clip, sensors: ImageBindConfig) -> ImageBind:
    """Checkpoint surgery: an ImageBind whose image and text encoders are ``clip``'s towers (a 2-D
    patch weight is inflated over ImageBind's 2-frame tubelets, a conv stem runs per frame — either
    way an image embeds exactly as in the CLIP) and whose text scale is the CLIP's temperature; the
    sensor encoders (sized by ``sensors``) are new."""
    model = ImageBind.from_config(with_clip_towers(sensors, clip.config))
    vision = dict(clip.visual.state_dict())
    if clip.config.vision.stem == "conv":  # the same 2-D stem, run per frame
        vision = {"stem." + k if k.startswith("stem.") else k: v for k, v in vision.items()}
    else:
        model.encoders["image"].stem.inflate_from(vision.pop("stem.proj.weight"))
        vision["stem.proj.weight"] = model.encoders["image"].stem.proj.weight.detach().clone()
    model.encoders["image"].load_state_dict(vision)  # strict: every other key has the same name
    model.encoders["text"].load_state_dict(clip.text.state_dict())
    with torch.no_grad():
        model.postprocessors["text"].log_logit_scale.copy_(clip.logit_scale)
    return model


def _example_inputs(c: ImageBindConfig) -> dict:
    from ..registry import example_inputs

    shapes = {"image": (3, c.image_size, c.image_size), "audio": (1, c.audio_mel_bins, c.audio_frames),
              "depth": (1, c.map_size, c.map_size), "thermal": (1, c.map_size, c.map_size), "imu": (6, c.imu_length)}
    inputs = {m: torch.randn(2, *shapes[m]) for m in c.modalities if m != "text"}
    if c.text is not None:
        inputs["text"] = example_inputs(c.text)["ids"]
    return {"inputs": inputs}


def _embed_examples(c: ImageBindConfig) -> dict:
    inputs = _example_inputs(c)["inputs"]
    out = {m: ((x,), None) for m, x in inputs.items() if m != "text"}
    if "text" in inputs:
        out["text"] = ((inputs["text"], torch.ones_like(inputs["text"])), c.text.context_length)
    return out


def official_processor(c: ImageBindConfig):
    """ImageBind's own processing where its code defines it (CLIP image statistics; 16 kHz
    128-bin fbank normalised by its statistics, 3 clips). The official code ships no depth, thermal
    or IMU loaders: depth is turned into disparity (as the paper trains on), thermal and IMU are
    fed as they are."""
    from ..modalities.processor import (AudioProcessing, ImageProcessing, IMUProcessing, MapProcessing, Processor,
                                        VideoProcessing)

    return Processor(
        image=ImageProcessing(c.image_size) if c.image else None,
        audio=AudioProcessing(mel_bins=c.audio_mel_bins, frames=c.audio_frames) if c.audio else None,
        depth=MapProcessing(c.map_size, disparity=True) if c.depth else None,
        thermal=MapProcessing(c.map_size) if c.thermal else None,
        imu=IMUProcessing(c.imu_length) if c.imu else None,
        video=VideoProcessing(frames_per_clip=c.video_frames) if c.image else None)


register_family("imagebind", ImageBindConfig, ImageBind.from_config, example_inputs=_example_inputs,
                processor=official_processor, embed_examples=_embed_examples)
register_preset("imagebind-huge")(ImageBindConfig)


@register_preset("imagebind-tiny")
def _imagebind_tiny() -> ImageBindConfig:
    """The sizes of tests/fixtures/imagebind (official geometry, tiny towers, vocabulary 128)."""
    return ImageBindConfig(
        embed_dim=16, image=TowerConfig(24, 2, 2),
        text=TextTransformerConfig(vocab_size=128, context_length=77, width=32, layers=2, heads=2, mlp_hidden=128,
                                   eps=1e-6, output_dim=16),
        audio=TowerConfig(16, 2, 2, 0.1), depth=TowerConfig(16, 1, 2), thermal=TowerConfig(16, 1, 2),
        imu=TowerConfig(16, 2, 2, 0.7))


@register_preset("imagebind-world")
def _imagebind_world() -> ImageBindConfig:
    """ImageBind on the world at 64 px: the clip-world-minilm towers (image, frozen MiniLM text)
    plus small audio (1 s), depth, thermal and IMU (8-frame clip, 100 samples) encoders."""
    from ..registry import preset

    sensors = ImageBindConfig(
        audio=TowerConfig(128, 3, 4), depth=TowerConfig(128, 3, 4), thermal=TowerConfig(128, 3, 4),
        imu=TowerConfig(128, 3, 4, drop_path=0.1), audio_frames=98, map_size=64, depth_patch=8, thermal_patch=8,
        imu_length=100, imu_patch=10, imu_head_dropout=0.0,
        # One temperature, 0.05, for every sensor: with 128-sample batches the official 0.2 (depth,
        # IMU) leaves the InfoNCE too soft to learn in a few hundred steps.
        scales={"audio": 20.0, "depth": 20.0, "thermal": 20.0, "imu": 20.0})
    return with_clip_towers(sensors, preset("clip-world-minilm"))
