"""VideoCLIP (Xu et al., 2021; fairseq MMPT ``MMFusionSeparate``): a video tower — per-second
features from a frozen video encoder (S3D, 512-d) through an MLP into a BERT — and a BERT text
tower, each pooled by a masked mean; the score of a (clip, text) pair is the dot product.

    vfeats [B, V, input_dim] ─ MLP ─▶ [CLS] video tokens [SEP] ─ BERT (video layers) ─ mean(video tokens, [SEP])
    caps [B, L] = [CLS] [SEP] words [SEP] ─ drop the first [SEP] ─ BERT ─ mean(words, [SEP])

Video tokens get no word embedding; positions are CLS 0, video tokens 1…V and the video [SEP]
``max_video_len + 1`` whatever V is (the reference's convention). Both poolers are plain masked means
that leave [CLS] out; nothing is projected or normalised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..registry import register_family, register_preset
from .bert import BertConfig, BertTextTower


@dataclass
class VideoCLIPConfig:
    text: BertConfig = field(default_factory=lambda: BertConfig(tanh_pooler=False, pooling="mean"))
    video_layers: int = 6
    max_video_len: int = 32  # seconds (feature steps) per clip
    input_dim: int = 512  # the per-second feature width (S3D's video_embedding)
    cls_id: int = 101
    sep_id: int = 102

    @property
    def embed_dim(self) -> int:
        """The width both towers pool to (what an index stores)."""
        return self.text.width

    def video_bert(self) -> BertConfig:
        """The video tower's BERT: the text config with its own depth."""
        from dataclasses import replace

        return replace(self.text, layers=self.video_layers, tanh_pooler=False, pooling="mean")


class VideoTokenMLP(nn.Module):
    """Per-second features [B, V, input_dim] → video tokens [B, V, width]: Linear → GELU →
    LayerNorm (eps 1e-5, as the reference) → Linear."""

    def __init__(self, input_dim: int, width: int):
        super().__init__()
        self.linear1 = nn.Linear(input_dim, width)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(width, eps=1e-5)
        self.linear2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.norm(self.act(self.linear1(x))))


def masked_mean(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """hidden [B, N, D], weights [B, N] (0/1) → [B, D]: the mean over the weighted positions."""
    w = weights.to(hidden.dtype).unsqueeze(-1)
    return (hidden * w).sum(dim=1) / w.sum(dim=1).clamp(min=1e-6)


class VideoCLIP(nn.Module):
    """Two BERT towers over per-second video features and text; :meth:`forward` →
    ``pooled_video`` [B, width], ``pooled_text`` [B, width] (MMPT's outputs)."""

    def __init__(self, config: VideoCLIPConfig):
        super().__init__()
        self.config = c = config
        self.video_mlp = VideoTokenMLP(c.input_dim, c.text.width)
        self.video = BertTextTower(c.video_bert())
        self.text = BertTextTower(c.text)

    def video_tokens(self, vfeats: torch.Tensor, vmasks: torch.Tensor | None = None,
                     special_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """(embeddings [B, V + 2, width] after the stem's LayerNorm, attention mask [B, V + 2], pooling
        weights [B, V + 2]) of per-second features ``vfeats`` [B, V, input_dim], ``vmasks`` [B, V] (1 = real);
        ``special_ids`` [B, 2]: the [CLS] and [SEP] ids (default: the config's)."""
        c = self.config
        b, v = vfeats.shape[:2]
        if vfeats.dim() != 3 or vfeats.shape[-1] != c.input_dim:
            raise ValueError(f"expected video features [B, V, {c.input_dim}], got {tuple(vfeats.shape)}")
        if v > c.max_video_len:
            raise ValueError(f"{v} feature steps > max_video_len {c.max_video_len}: cut the video into clips")
        vmasks = torch.ones(b, v, dtype=torch.long, device=vfeats.device) if vmasks is None else vmasks.long()
        stem = self.video.stem
        if special_ids is None:
            special_ids = torch.tensor([[c.cls_id, c.sep_id]], device=vfeats.device).expand(b, -1)
        special = stem.word(special_ids)
        x = torch.cat([special[:, :1], self.video_mlp(vfeats), special[:, 1:]], dim=1)
        positions = torch.arange(v + 2, device=vfeats.device)
        positions[-1] = c.max_video_len + 1  # [SEP] takes the last position, however short the clip
        x = stem.normalize(x + stem.position(positions) + stem.token_type(torch.zeros_like(positions)))
        one = torch.ones(b, 1, dtype=torch.long, device=vfeats.device)
        return x, torch.cat([one, vmasks, one], dim=1), torch.cat([one * 0, vmasks, one], dim=1)

    def encode_video(self, vfeats: torch.Tensor, vmasks: torch.Tensor | None = None,
                     return_hidden: bool = False, special_ids: torch.Tensor | None = None):
        """Per-second features [B, V, input_dim] (+ ``vmasks`` [B, V]) → pooled video [B, width]."""
        x, mask, weights = self.video_tokens(vfeats, vmasks, special_ids)
        hidden = self.video.forward_features(attention_mask=mask, inputs_embeds=x)
        pooled = masked_mean(hidden, weights)
        return (pooled, hidden) if return_hidden else pooled

    def encode_text(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    return_hidden: bool = False):
        """Text ids [B, L] as ``[CLS] words [SEP]`` (+ mask [B, L]) → pooled text [B, width]: the mean over
        every position but [CLS]."""
        mask = torch.ones_like(ids) if attention_mask is None else attention_mask
        hidden = self.text.forward_features(ids, mask)
        weights = torch.cat([torch.zeros_like(mask[:, :1]), mask[:, 1:]], dim=1)
        pooled = masked_mean(hidden, weights)
        return (pooled, hidden) if return_hidden else pooled

    modalities = ("text",)  # what :meth:`embed` takes as raw input; videos go through a frame backbone first

    def embed(self, modality: str, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The embedding-space interface (:class:`~polymodal.tasks.Embedder`): ``"text"`` ids [B, L] →
        [B, width]; ``"video"`` per-second features [B, V, input_dim] (+ ``attention_mask`` [B, V]) → [B, width]."""
        if modality == "text":
            return self.encode_text(x, attention_mask)
        if modality == "video":
            return self.encode_video(x, attention_mask)
        raise ValueError(f"a VideoCLIP embeds text and per-second video features, not {modality!r}")

    def forward(self, caps: torch.Tensor, cmasks: torch.Tensor, vfeats: torch.Tensor,
                vmasks: torch.Tensor | None = None) -> dict:
        """MMPT's inputs: ``caps`` [B, L] = [CLS] [SEP] words [SEP] pad…, ``cmasks`` [B, L], ``vfeats``
        [B, V, input_dim], ``vmasks`` [B, V]. The video sequence takes its [CLS] and [SEP] from
        ``caps[:, :2]``, as the reference does."""
        text_ids = torch.cat([caps[:, :1], caps[:, 2:]], dim=1)
        text_mask = torch.cat([cmasks[:, :1], cmasks[:, 2:]], dim=1)
        return {"pooled_video": self.encode_video(vfeats, vmasks, special_ids=caps[:, :2]),
                "pooled_text": self.encode_text(text_ids, text_mask)}

    def score(self, pooled_video: torch.Tensor, pooled_text: torch.Tensor) -> torch.Tensor:
        """[Nv, D] × [Nt, D] → [Nv, Nt] dot products (the retrieval score)."""
        return pooled_video @ pooled_text.T


def pad_clips(clips: list[torch.Tensor], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips [V_i, D] → (vfeats [B, V, D] zero-padded, vmasks [B, V]) with V = the longest (≤ max_len)."""
    v = min(max(len(c) for c in clips), max_len)
    out = torch.zeros(len(clips), v, clips[0].shape[1])
    mask = torch.zeros(len(clips), v, dtype=torch.long)
    for i, c in enumerate(clips):
        out[i, :len(c)], mask[i, :len(c)] = c[:v], 1
    return out, mask


def mmpt_caps(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts → MMPT's ``caps`` [B, L + 1] = [CLS] [SEP] words [SEP] and ``cmasks``, from a WordPiece
    tokenizer's [CLS] words [SEP] (cut to the longest text)."""
    ids, mask = text_ids(tokenizer, texts)
    sep = tokenizer.tokenizer.token_to_id("[SEP]")
    if sep is None:
        raise ValueError("VideoCLIP's text needs a WordPiece tokenizer with [CLS] and [SEP]")
    caps = torch.cat([ids[:, :1], torch.full_like(ids[:, :1], sep), ids[:, 1:]], dim=1)
    return caps, torch.cat([mask[:, :1], mask[:, :1], mask[:, 1:]], dim=1)


def text_ids(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts → (ids, attention_mask) [B, L] as the text tower reads them alone ([CLS] words [SEP]),
    cut to the longest text."""
    tokens = tokenizer(texts, truncate=True)
    length = int(tokens.attention_mask.sum(1).max())
    return tokens.ids[:, :length], tokens.attention_mask[:, :length]


def _example_inputs(c: VideoCLIPConfig) -> dict:
    caps = torch.tensor([[c.cls_id, c.sep_id, 7, 8, c.sep_id], [c.cls_id, c.sep_id, 9, c.sep_id, 0]])
    return {"caps": caps, "cmasks": (caps != 0).long(), "vfeats": torch.randn(2, 3, c.input_dim),
            "vmasks": torch.tensor([[1, 1, 1], [1, 1, 0]])}


def _embed_examples(c: VideoCLIPConfig) -> dict:
    ex = _example_inputs(c)
    ids = torch.cat([ex["caps"][:, :1], ex["caps"][:, 2:]], dim=1)  # [CLS] words [SEP]
    return {"text": ((ids, (ids != 0).long()), c.text.max_positions),
            "video": ((ex["vfeats"], ex["vmasks"]), c.max_video_len)}


def _processor(config: VideoCLIPConfig):
    """Text only: videos reach a VideoCLIP as per-second features from a separate backbone."""
    from ..modalities.processor import Processor

    return Processor(image=None)


register_family("videoclip", VideoCLIPConfig, VideoCLIP, example_inputs=_example_inputs, processor=_processor,
                embed_examples=_embed_examples)


@register_preset("videoclip")
def _videoclip() -> VideoCLIPConfig:
    """The released VideoCLIP: bert-base-uncased towers (12 text, 6 video layers), 32 s clips of S3D features."""
    return VideoCLIPConfig()


@register_preset("videoclip-tiny")
def _videoclip_tiny() -> VideoCLIPConfig:
    """The sizes of tests/fixtures/videoclip."""
    return VideoCLIPConfig(BertConfig(vocab_size=200, width=64, layers=2, heads=2, mlp_hidden=128, max_positions=40,
                                      tanh_pooler=False, pooling="mean"),
                           video_layers=1, max_video_len=6, input_dim=32, cls_id=2, sep_id=3)


@register_preset("videoclip-world")
def _videoclip_world() -> VideoCLIPConfig:
    """For the world: all-MiniLM-L6-v2's geometry in both towers (the video tower starts from its
    first 2 layers, as MMPT's starts from BERT's first 6), 16 s clips; ``input_dim`` is set from the
    frame features."""
    from .bert import minilm_config

    return VideoCLIPConfig(minilm_config(tanh_pooler=False), video_layers=2, max_video_len=16, input_dim=512)
