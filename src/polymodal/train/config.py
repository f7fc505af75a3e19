"""Run configuration: plain YAML mapped onto dataclasses, validated (unknown keys, wrong types)
before anything runs; ``key.sub=value`` overrides from the command line."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A configuration problem; the message names the file and the key."""


@dataclass
class ModelConfig:
    preset: str = "clip-world-tiny"
    text_weights: str | None = None  # "minilm" = the packaged all-MiniLM-L6-v2, or a checkpoint folder
    freeze_text: bool = False
    grad_checkpointing: bool = False
    init_from: str | None = None  # vqa: a pretraining run's model folder whose trunk the task starts from
    layout_2d: bool = True  # LayoutLM: 2-D box embeddings and relative biases (False: text + 1-D positions only)
    visual_tokens: bool = True  # LayoutLM: the page image's tokens (False: text and layout only)


@dataclass
class DataConfig:
    kind: str = "world"  # the source of the examples (polymodal.train.sources): "world" (generated), "csv", "wds", "funsd", "docvqa", "folders", …
    path: str | None = None  # csv: a CSV/TSV of image paths and captions; wds: a folder of .tar shards
    image_key: str = "filepath"  # csv: the column holding image paths (open_clip's --csv-img-key)
    caption_key: str = "caption"  # csv: the column holding captions (open_clip's --csv-caption-key)
    val_path: str | None = None  # csv/wds: optional validation table / shards for retrieval metrics
    allow_outside: bool = False  # csv: read pictures a row names outside the table's folder (.., absolute paths)
    workers: int = 0  # wds: DataLoader workers per process (each reads its own shards)
    shuffle_buffer: int = 1000  # wds: samples held for shuffling
    train_n: int = 20000
    val_n: int = 1000
    image_size: int = 64
    seed: int = 0
    tokenizer: str | None = None  # a saved tokenizer folder; None: train a BPE on the training captions
    tokenizer_vocab: int = 1024  # vocabulary of that BPE
    context_length: int = 64
    hard_negatives: int = 0  # world: batches of runs of this many scenes sharing place + colours (0: random)
    region_tower: str | None = None  # region objectives: a saved CLIP/ImageBind folder whose image tower reads regions
    boxes: str = "truth"  # region objectives: "truth" (the world's or the annotations' object boxes), "detector" (world: jittered, missed, false), "grid", or a JSON file {picture: boxes}
    regions: str | None = None  # region sources on files: precomputed features (a TSV, or a folder of MMF .npy / .npz) instead of data.region_tower
    max_missing: float = 0.1  # region sources on files: the share of pictures without regions that stops the run
    images: str | None = None  # vqa_v2, vcr, refcoco, memes, coco_captions: the folder holding the pictures
    val_images: str | None = None  # the same for the validation files (default: data.images)
    questions: str | None = None  # vqa_v2: the questions JSON (training)
    annotations: str | None = None  # vqa_v2: the annotations JSON (training)
    val_questions: str | None = None  # vqa_v2: validation questions
    val_annotations: str | None = None  # vqa_v2: validation annotations
    min_answer_count: int = 1  # vqa: answers given fewer times in training are left out of the vocabulary
    instances: str | None = None  # refcoco: COCO instances.json beside the refs pickle; coco_captions: object boxes and classes
    val_instances: str | None = None  # coco_captions: the validation pictures' instances.json
    frame_tower: str | None = None  # videoclip: a saved CLIP/ImageBind folder whose image tower embeds video frames
    pairs: str = "overlapped"  # videoclip: (clip, text) positives "naive" (the timestamps) or "overlapped"
    shift_rate: float = 0.25  # videoclip on the world: the share of narration segments shifted in time
    features: str | None = None  # videoclip with data.kind csv: per-second features, NAME.npy per video
    feature_cache: str | None = None  # videoclip: a folder keeping the world videos' frame features between runs
    batches: str = "random"  # videoclip: "random", or "retrieval" (from neighbouring k-means clusters of videos)
    clusters: int = 0  # videoclip retrieval batches: k-means clusters (0: one per 16 videos)
    recluster_epochs: int = 1  # videoclip retrieval batches: re-embed and re-cluster the videos this often
    ocr: str = "truth"  # documents: evaluate on the ground-truth words only, or also on Tesseract's ("tesseract")
    ocr_n: int = 50  # documents with data.ocr tesseract: validation pages read by OCR
    box_jitter: int = 0  # documents: move each training word's box edges by up to this many 0–1000 grid units


@dataclass
class OptimConfig:
    lr: float = 5e-4
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    warmup_steps: int = 100
    clip_grad: float = 1.0


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 128
    accum_freq: int = 1  # micro-batches per step; features are cached so the contrastive batch stays batch_size
    compile: bool = False  # torch.compile the model (in place: checkpoint keys are unchanged)
    fsdp: bool = False  # under torchrun: shard parameters, gradients and optimiser state (FSDP2) instead of DDP
    precision: str = "fp32"  # "fp32" or "bf16" (autocast)
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 200
    eval_every: int = 0  # 0: evaluate at the end only
    out: str = "runs/clip-world-tiny"
    threads: int = 0  # torch threads; 0 keeps torch's default
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"; torchrun: LOCAL_RANK's GPU
    loader_workers: int = 0  # DataLoader processes preparing batches ahead of the step (0: in the loop)
    tensorboard: bool = False  # also write TensorBoard event files to train.out/tensorboard (needs tensorboard)


@dataclass
class ObjectiveConfig:
    # "contrastive" (CLIP: image–caption pairs), "classification" (a ViT's head), "mlm_itm"
    # (VisualBERT pretraining: masked words + image–text matching over world regions) or "vqa"
    # (questions about world scenes answered from their regions: an answer head, soft-score BCE),
    # "consistency", "refexp" or "vcr" (the lecture's other region tasks, train/region_tasks.py)
    kind: str = "contrastive"
    label: str = "place"  # classification on the world: "place" or "count" (objects in the scene);
    # doc_classify: the document class (any other value) or "stamp" (stamped or not: only the image tells)
    label_smoothing: float = 0.0
    # region tasks: "text" / "image" train and evaluate with the other input masked out (the
    # single-modality baselines of the same size)
    inputs: str = "both"


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class StageOneConfig:
    config: str = "configs/clip-world-minilm.yaml"  # the CLIP recipe that makes the image/text towers
    overrides: list[str] = field(default_factory=list)  # key=value overrides for it
    model: str | None = None  # a trained CLIP folder (RUN/model, tokenizer inside): skips stage 1


@dataclass
class BindConfig:
    """ImageBind's two-stage recipe (configs/imagebind-world.yaml)."""

    stage1: StageOneConfig = field(default_factory=StageOneConfig)
    preset: str = "imagebind-world"
    modalities: list[str] = field(default_factory=lambda: ["audio", "depth", "thermal", "imu"])
    train_n: int = 4000
    test_n: int = 500
    seed: int = 0
    # Each encoder trains through the one engine with these (train.out, checkpoints and metrics
    # files do not apply: the recipe writes its own log.jsonl).
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, weight_decay=0.05, warmup_steps=30))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=300, batch_size=128, precision="bf16",
                                                                   log_every=50))
    supervised: bool = True  # also train the (sensor, text) upper bound for each modality
    workers: int = 2  # processes rendering the world
    out: str = "runs/imagebind-world"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# data.kind and objective.kind are registries (train/sources, train/kinds): checked when the run's kind is made.
CHOICES = {"data.ocr": ("truth", "tesseract"), "train.precision": ("fp32", "bf16"),
           "objective.label": ("place", "count", "doc_class", "stamp"), "objective.inputs": ("both", "text", "image"),
           "data.pairs": ("naive", "overlapped"),
           "data.batches": ("random", "retrieval")}


def _check_type(value, hint, where: str):
    origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(hint)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                return _check_type(value, option, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    values = {}
    defaults = {f.name: f.default_factory() for f in dataclasses.fields(cls)
                if f.default_factory is not dataclasses.MISSING}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
            # Keys not given keep this config's own defaults for the section (BindConfig's
            # train.precision is bf16), not the section class's.
            values[name] = _build(hint, {**dataclasses.asdict(defaults[name]), **value}, key)
        else:
            values[name] = _check_type(value, hint, key)
            allowed = CHOICES.get(key.split(": ")[-1])
            if allowed and values[name] not in allowed:
                raise ConfigError(f"{key}: {values[name]!r} is not one of {allowed}")
    return cls(**values)


def parse_overrides(overrides: list[str]) -> dict:
    """``["train.steps=200", "model.freeze_text=true"]`` → nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def _merge(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        base[k] = _merge(dict(base.get(k) or {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return base


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, cls: type = RunConfig):
    """Read YAML ``path`` (or defaults) into ``cls`` (:class:`RunConfig` or :class:`BindConfig`),
    apply overrides, validate; errors name the file and key."""
    raw: dict = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
    raw = _merge(raw, parse_overrides(overrides or []))
    try:
        return _build(cls, raw, "")
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
