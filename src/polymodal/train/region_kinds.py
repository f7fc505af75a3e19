"""The region models' runs (VisualBERT, ViLBERT): what every region kind shares — pictures read as
regions by a frozen image tower (``data.region_tower``), a WordPiece tokenizer, the trunk built from
a preset and a BERT — and the first of them, ``mlm_itm`` (VisualBERT pretraining: masked words +
image–text matching).
"""

from __future__ import annotations

import warnings
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from ..layers import set_grad_checkpointing
from ..modalities.text import TextTokenizer
from ..objectives import MaskedLMAndMatching, Objective
from ..registry import build, preset
from ..tasks.region_extractor import RegionExtractor
from ..tasks.region_tower import MAX_REGIONS, region_extractor, save_region_tower
from .config import ConfigError, RunConfig
from .kinds import TrainKind, register_kind
from .region_data import RegionCaptions, mask_words, mlm_itm_batch, special_ids, word_group_ids
from .tokenizer import build_tokenizer, text_weights_folder

TOKENIZER = ("tokenizer", "tokenizer_vocab", "context_length")  # the data.* settings build_tokenizer reads


def build_region_model(cfg: RunConfig, tokenizer: TextTokenizer, visual_dim: int, **sizes) -> nn.Module:
    """The preset's region model (VisualBERT or ViLBERT) sized to the tokenizer and the region
    features (and ``sizes``, other config fields the data fixes, e.g. ``region_classes``); with ``model.text_weights`` its text side (word/position/type embeddings and BERT
    layers; VisualBERT's pooler too) starts from that BERT, renamed by the family's ``BERT_KEYS``."""
    config = preset(cfg.model.preset)
    text = getattr(config, "bert", None) or getattr(config, "text", None)
    if not hasattr(config, "visual_dim") or text is None:
        raise ConfigError(f"model.preset {cfg.model.preset!r} is not a region model (VisualBERT or ViLBERT); "
                          f"objective.kind {cfg.objective.kind} trains one")
    config.visual_dim, text.vocab_size = visual_dim, tokenizer.vocab_size
    for name, value in sizes.items():
        if not hasattr(config, name):
            raise ConfigError(f"model.preset {cfg.model.preset!r} has no {name}; objective.kind "
                              f"{cfg.objective.kind} needs one")
        setattr(config, name, value)
    model = build(config)
    if cfg.model.text_weights:
        from ..weights import apply_state_dict, read_checkpoint

        raw, layout = read_checkpoint(text_weights_folder(cfg.model.text_weights))
        if layout.family != "bert":
            raise ConfigError(f"model.text_weights {cfg.model.text_weights} is a {layout.family} checkpoint, not a BERT")
        state = layout.convert(raw)
        for old, new in getattr(model, "BERT_KEYS", {}).items():  # e.g. ViLBERT's text blocks are a_blocks
            state = {(new + k[len(old):] if k.startswith(old) else k): v for k, v in state.items()
                     if new is not None or not k.startswith(old)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the region stem and heads are new: missing by design
            apply_state_dict(model, state, strict=False, source=cfg.model.text_weights)
    if cfg.model.grad_checkpointing:
        set_grad_checkpointing(model)
    return model


def start_trunk(task_trunk: nn.Module, trunk: nn.Module, init_from: str | None = None) -> None:
    """Fill a task model's trunk (its pretraining heads dropped) with the weights of ``init_from`` (a
    saved region model of the same architecture: a pretraining run's ``model`` folder) or else of
    ``trunk`` (fresh, or with text weights). Every trunk weight must come from the source."""
    source = trunk
    if init_from:
        from ..weights import load_checkpoint

        source = load_checkpoint(init_from)
        if source.config != trunk.config:
            raise ConfigError(f"model.init_from {init_from} holds a {type(source).__name__} of another shape than "
                              f"model.preset gives (e.g. vocabulary or region width differ)")
    own = task_trunk.state_dict()
    task_trunk.load_state_dict({k: v for k, v in source.state_dict().items() if k in own})  # heads stay behind


def keep_inputs(batch: dict, inputs: str) -> dict:
    """A region batch with one side taken away, for the single-modality baselines: "text" keeps the
    words and leaves one blank region (zero features and box), "image" keeps the regions and only the
    first token ([CLS]) of the text; "both" changes nothing. Shapes stay valid for both families
    (ViLBERT's image stream needs one unmasked region to attend to)."""
    if inputs == "both":
        return batch
    if inputs == "image":
        return {**batch, "ids": batch["ids"][:, :1], "attention_mask": batch["attention_mask"][:, :1]}
    if inputs != "text":
        raise ValueError(f"inputs must be 'both', 'text' or 'image', got {inputs!r}")
    regions = torch.zeros_like(batch["regions"][:, :1])
    out = {**batch, "regions": regions, "region_mask": torch.ones_like(batch["region_mask"][:, :1])}
    if batch.get("boxes") is not None:
        out["boxes"] = torch.zeros_like(batch["boxes"][:, :1])
    return out


class RegionKind(TrainKind):
    """Pictures as regions — read by ``data.region_tower`` or, for sources on files, given as features
    (``data.regions``) — and a WordPiece tokenizer (for [MASK] and [SEP])."""

    reads = TOKENIZER + ("region_tower", "image_size")
    regions_per_picture = 0  # the most regions a training picture had (recorded with the saved model)

    def check_config(self) -> None:
        cfg, d, kind = self.cfg, self.cfg.data, self.cfg.objective.kind
        if not d.region_tower and not d.regions:
            raise ConfigError(f"objective.kind {kind} needs data.region_tower: a saved CLIP or ImageBind folder "
                              "(e.g. runs/clip-world-minilm/model) whose image tower reads the regions"
                              + (" (or data.regions: features already computed)" if "regions" in self.source.reads
                                 else ""))
        if not (cfg.model.text_weights or d.tokenizer or (self.out is not None and (self.out / "tokenizer").is_dir())):
            raise ConfigError(f"objective.kind {kind} needs a WordPiece tokenizer with [MASK]: set model.text_weights "
                              "(e.g. minilm) or data.tokenizer")

    def load_tokenizer(self) -> None:
        self.check_config()
        saved = self.out / "tokenizer" if self.out is not None else None
        self.tokenizer = build_tokenizer(self.cfg, [], saved)
        self.special = special_ids(self.tokenizer)
        if self.rank == 0 and saved is not None:
            self.tokenizer.save(saved)

    def load_examples(self, split: str):
        examples = super().load_examples(split)
        for part in (examples.values() if isinstance(examples, dict) else [examples]):
            regions = getattr(getattr(part, "texts", part), "regions", None)
            if isinstance(regions, torch.Tensor):
                self.regions_per_picture = max(self.regions_per_picture, regions.shape[1])
        return examples

    @cached_property
    def extractor(self) -> RegionExtractor:
        if not self.cfg.data.region_tower:
            raise ConfigError(f"data.kind {self.cfg.data.kind} reads pictures here: it needs data.region_tower")
        return region_extractor(self.cfg.data.region_tower)

    def trunk(self, visual_dim: int, **sizes) -> nn.Module:
        return build_region_model(self.cfg, self.tokenizer, visual_dim, **sizes)

    def save(self, folder: Path) -> None:  # what reads this model's regions travels with it
        d = self.cfg.data
        save_region_tower(folder, d.region_tower, d.image_size, self.regions_per_picture or MAX_REGIONS, d.regions)


@register_kind("mlm_itm")
class MaskedLMKind(RegionKind):
    examples = "region_captions"

    """VisualBERT pretraining on world captions: masked words + image–text matching."""

    def load_data(self) -> None:
        self.load_tokenizer()
        self.data = self.load_examples("train")

    def build_model(self) -> nn.Module:
        return self.trunk(self.data.regions.shape[-1])

    def objective(self, model: nn.Module) -> Objective:
        return MaskedLMAndMatching()

    def batch(self, step: int) -> dict:
        t = self.cfg.train
        return mlm_itm_batch(self.data, step, t.batch_size, t.seed, self.special, self.tokenizer.vocab_size,
                             self.rank, self.world_size)

    def evaluate(self, model: nn.Module) -> dict:
        val = self.load_examples("val")
        return {} if val is None else evaluate_region_lm(model, val, self.tokenizer, self.cfg.data.seed)


def pretraining_outputs(model: nn.Module, batch: dict, inputs: str = "both") -> dict:
    """A pretraining model's outputs on a region batch, either family (by keyword: ViLBERT takes
    boxes), seeing only ``inputs`` (:func:`keep_inputs`); ``match_logits`` [B, 2] is VisualBERT's
    sentence–image head or ViLBERT's alignment head (index 0: the caption fits)."""
    b = keep_inputs(batch, inputs)
    out = model(ids=b["ids"], regions=b["regions"], attention_mask=b["attention_mask"], region_mask=b["region_mask"],
                boxes=b["boxes"])
    return {**out, "match_logits": out["itm_logits"] if "itm_logits" in out else out["align_logits"]}


@torch.no_grad()
def evaluate_region_lm(model: nn.Module, val: RegionCaptions, tokenizer: TextTokenizer, seed: int,
                       batch: int = 128) -> dict:
    """On the validation captions: masked-word accuracy (BERT masking, fixed ``seed``) with the
    regions and with them removed (:func:`keep_inputs` "text"), image–text matching accuracy, and —
    on the matched pairs — the accuracy of filling in every word of each of ``val.word_groups``
    (the world's colour, shape and count words), with and without regions. Either family
    (VisualBERT or ViLBERT)."""
    model.eval()
    special = special_ids(tokenizer)
    groups = word_group_ids(tokenizer, val.word_groups)
    hits, counts = {}, {}

    def score(name: str, b: dict, labels: torch.Tensor, itm: torch.Tensor | None = None):
        chosen = labels != -100
        for suffix, inputs in (("", "both"), ("_without_regions", "text")):
            out = pretraining_outputs(model, b, inputs)
            pred = out["mlm_logits"][:, :labels.shape[1]].argmax(-1)
            hits[name + suffix] = hits.get(name + suffix, 0) + int((pred[chosen] == labels[chosen]).sum())
            counts[name + suffix] = counts.get(name + suffix, 0) + int(chosen.sum())
            if itm is not None and not suffix:
                hits["itm"] = hits.get("itm", 0) + int((out["match_logits"].argmax(-1) == itm).sum())
                counts["itm"] = counts.get("itm", 0) + len(itm)

    size = min(batch, len(val))
    for step in range(max(1, len(val) // size)):
        b = mlm_itm_batch(val, step, size, seed + 1, special, tokenizer.vocab_size)
        itm = b["itm_labels"]
        score("mlm", b, b["mlm_labels"], itm)
        matched = itm == 0
        original = torch.where(b["mlm_labels"] != -100, b["mlm_labels"], b["ids"])[matched]
        rows = {k: v[matched] for k, v in b.items() if k in ("regions", "region_mask", "boxes", "attention_mask")}
        for group, word_ids in groups.items():
            ids, labels = mask_words(original, word_ids, special["MASK"])
            score(f"{group}_words", {**rows, "ids": ids}, labels)
    result = {f"{k}_accuracy": hits[k] / max(counts[k], 1) for k in hits}
    result.update({f"{k}_n": counts[k] for k in counts if not k.endswith("_without_regions")})
    return result
