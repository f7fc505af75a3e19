"""Device correctness without a GPU: every training kind's step, the binding step and the encoders run
with the model on ``meta`` while a dispatch mode records any tensor that an op reads or makes on
another device (an ``arange``, mask or label made on the CPU would be one host→GPU copy per step on
CUDA, or an error). Also: the device setting, batch moves, :func:`host_io`, and checkpoints written
on one device resumed on another."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import polymodal
from polymodal.devices import DeviceError, host_io, model_device, resolve, to_device
from polymodal.objectives import BindToTargets
from polymodal.registry import example_inputs
from polymodal.train.config import ConfigError, OptimConfig, TrainConfig, load_config
from polymodal.train.engine import Engine
from polymodal.train.kinds import kind_names
from polymodal.train.trainer import Trainer

META = torch.device("meta")


class DeviceWatch(TorchDispatchMode):
    """Records every op that reads or returns a tensor with dimensions off ``device`` (0-d tensors are
    exempt: Python scalars, and AdamW's step counters, which PyTorch keeps on the CPU by design)."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device, self.strays = device, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # Copying a host tensor over is what moving a batch is; making one on the host is still caught.
        checked = (("returns", out),) if func is torch.ops.aten._to_copy.default else (("reads", (args, kwargs)), ("returns", out))
        for where, value in checked:
            for t in tree_leaves(value):
                if isinstance(t, torch.Tensor) and t.dim() > 0 and t.device != self.device:
                    self.strays.append(f"{func} {where} {tuple(t.shape)} on {t.device}")
        return out


# One small run of every objective kind; a new kind gets its line here (the test below insists).
def _kind_overrides(kind: str, tower, minilm_dir) -> list[str]:
    region = [f"data.region_tower={tower}", f"data.tokenizer={minilm_dir}", "data.context_length=32",
              "data.train_n=32", "data.val_n=8", "train.batch_size=8"]
    video = ["model.preset=videoclip-tiny", f"data.frame_tower={tower}", f"data.tokenizer={minilm_dir}",
             "data.context_length=32", "data.train_n=6", "data.val_n=2", "train.batch_size=4"]
    doc = ["data.train_n=16", "data.val_n=4", "train.batch_size=8"]
    return {
        "contrastive": ["data.train_n=16", "data.val_n=8", "train.batch_size=8", "data.tokenizer_vocab=300"],
        "classification": ["model.preset=vit-tiny", "data.image_size=32", "data.train_n=16", "data.val_n=8", "train.batch_size=8"],
        "mlm_itm": ["model.preset=visualbert-tiny", *region],
        "vqa": ["model.preset=visualbert-tiny", *region],
        "consistency": ["model.preset=visualbert-tiny", *region],
        "refexp": ["model.preset=visualbert-tiny", *region],
        "vcr": ["model.preset=visualbert-tiny", *region],
        "masked_multimodal": ["model.preset=vilbert-tiny", *region],
        "videoclip": video,
        "video_mc": video,
        "doc_entities": ["model.preset=layoutlmv2-tiny", *doc],
        "doc_qa": ["model.preset=layoutlmv3-tiny", *doc],
        "doc_classify": ["model.preset=layoutlmv3-tiny", *doc],
        "doc_pretrain": ["model.preset=layoutlmv2-tiny", *doc],
    }[kind]


def test_every_training_kind_has_a_device_check():
    checked = {"contrastive", "classification", "mlm_itm", "vqa", "consistency", "refexp", "vcr", "masked_multimodal",
               "videoclip", "video_mc", "doc_entities", "doc_qa", "doc_classify", "doc_pretrain"}
    assert set(kind_names()) == checked


@pytest.mark.parametrize("kind", sorted(["contrastive", "classification", "mlm_itm", "vqa", "consistency", "refexp",
                                         "vcr", "masked_multimodal", "videoclip", "video_mc", "doc_entities", "doc_qa",
                                         "doc_classify", "doc_pretrain"]))
@pytest.mark.slow
def test_a_training_step_of_every_kind_stays_on_the_models_device(kind, tmp_path, tower, minilm_dir):
    cfg = load_config(None, [f"objective.kind={kind}", *_kind_overrides(kind, tower, minilm_dir), "train.steps=2",
                             "train.threads=1", "optim.warmup_steps=1", "train.device=meta", f"train.out={tmp_path}"])
    trainer = Trainer(cfg)
    engine = trainer.engine
    assert {p.device for p in trainer.model.parameters()} == {META}
    batch = to_device(trainer.kind.batch(0), META)
    before = [p.grad for p in trainer.model.parameters()]
    with DeviceWatch(META) as watch:
        loss, logs = engine.train_step(batch)
    assert watch.strays == [], kind
    assert loss.device == META and all(v.device == META for v in logs.values() if isinstance(v, torch.Tensor))
    grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
    assert grads and all(g.device == META for g in grads)
    assert all(g is None for g in before)
    assert all(t.device == META for s in engine.optimizer.state.values() for t in s.values() if t.dim() > 0)


def _examples(name: str) -> dict[str, torch.Tensor]:
    """Example inputs per encoder (batch 2) for a CLIP or ImageBind preset."""
    inputs = example_inputs(polymodal.preset(name))
    return inputs["inputs"] if "inputs" in inputs else {"image": inputs["images"], "text": inputs["ids"]}


def test_the_binding_step_stays_on_the_encoders_device():
    from polymodal.train.binding import fresh_encoder

    config = polymodal.preset("imagebind-tiny")
    encoder = fresh_encoder(config, "audio", 0)
    inputs = _examples("imagebind-tiny")["audio"]
    targets = torch.nn.functional.normalize(torch.randn(len(inputs), config.embed_dim), dim=-1)
    engine = Engine(encoder, BindToTargets(config.scales["audio"]), lambda step: {"inputs": inputs, "targets": targets},
                    optim=OptimConfig(warmup_steps=1), train=TrainConfig(steps=1, batch_size=2, device="meta"))
    with DeviceWatch(META) as watch:
        engine.train_step(to_device({"inputs": inputs, "targets": targets}, META))
    assert watch.strays == [] and model_device(encoder) == META


@pytest.mark.parametrize("name", ["clip-world-tiny", "imagebind-tiny"])
def test_encoding_every_modality_stays_on_the_models_device(name):
    from polymodal.tasks.embedder import Embedder

    model = polymodal.create(name).eval()
    examples = _examples(name)
    assert set(examples) == set(model.modalities)
    embedder = Embedder(model.to(META), None)
    for encoder, x in examples.items():
        mask = torch.ones_like(x) if encoder == "text" else None
        with DeviceWatch(META) as watch:
            out = embedder.encode(encoder, x, mask)  # a CPU batch in, moved by the embedder
        assert watch.strays == [] and out.device == META and out.shape == (len(x), model.config.embed_dim), encoder


def test_the_device_setting_resolves_or_names_what_is_wrong(monkeypatch):
    assert resolve("auto") == (torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu"))
    assert resolve("CPU") == torch.device("cpu") and resolve("meta") == META
    with pytest.raises(DeviceError, match="'tpu'"):
        resolve("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="sees no CUDA GPU"):
            resolve("cuda")
        with pytest.raises(ConfigError, match="train.device"):
            Trainer(load_config(None, ["train.device=cuda:1"]))


class Pair(NamedTuple):
    a: torch.Tensor
    b: list


@dataclasses.dataclass
class Rows:
    x: torch.Tensor
    name: str


def test_to_device_moves_every_tensor_in_nested_batches_and_leaves_the_rest():
    batch = {"pixels": torch.ones(2, 3), "pair": Pair(torch.zeros(1), [torch.ones(2), "s"]), "rows": Rows(torch.ones(1), "r"),
             "skipped": ["bad.png"], "n": 3}
    moved = to_device(batch, META)
    assert moved["pixels"].device == META and moved["pair"].a.device == META and moved["pair"].b[0].device == META
    assert isinstance(moved["pair"], Pair) and moved["pair"].b[1] == "s" and moved["rows"].name == "r"
    assert moved["rows"].x.device == META and moved["skipped"] == ["bad.png"] and moved["n"] == 3
    assert batch["pixels"].device == torch.device("cpu")  # the original is untouched


class Recorder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.seen = []

    def forward(self, x, mask=None):
        self.seen.append((x.device, None if mask is None else mask.device))
        return {"out": self.lin(x), "n": 1}

    def encode(self, x):
        self.seen.append((x.device, None))
        return self.lin(x)


def test_host_io_runs_the_model_on_its_device_and_returns_to_the_host():
    model = Recorder().to(META)
    bridged = host_io(model, host="meta")  # host=meta: results stay inspectable without a value
    out = bridged(torch.ones(4, 3), mask=torch.ones(4))
    assert model.seen[-1] == (META, META) and out["out"].device == META and out["n"] == 1
    bridged.encode(torch.ones(4, 3))
    assert model.seen[-1] == (META, None)
    assert bridged.lin.weight.device == META and host_io(bridged) is bridged
    cpu = host_io(Recorder())
    assert cpu(torch.ones(1, 3))["out"].device == torch.device("cpu")
    cpu.training = False  # attributes are set on the module itself
    assert cpu.module.training is False


def _checkpoint_claiming(location: str):
    """A context in which ``torch.save`` records every storage as living on ``location`` (as a file
    written on that device does), via the same location-tag registry torch uses for CUDA."""
    import contextlib

    from torch import serialization

    @contextlib.contextmanager
    def claiming():
        entry = (-1, lambda obj: location if obj.device.type == "cpu" else None, lambda obj, loc: None)
        serialization._package_registry.insert(0, entry)
        try:
            yield
        finally:
            serialization._package_registry.remove(entry)
    return claiming()


def _engine(model, out, device="cpu", steps=2):
    batches = lambda step: {"inputs": torch.randn(4, 3, generator=torch.Generator().manual_seed(step)),  # noqa: E731
                            "labels": torch.tensor([0, 1, 0, 1])}
    from polymodal.objectives import Classification

    return Engine(model, Classification(), batches, optim=OptimConfig(warmup_steps=1),
                  train=TrainConfig(steps=steps, batch_size=4, ckpt_every=1, device=device), out=out,
                  identity={"family": "toy"})


def test_a_checkpoint_written_on_a_gpu_resumes_on_the_cpu(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    engine = _engine(model, tmp_path, steps=1)
    with _checkpoint_claiming("cuda:0"):
        engine.fit()
    path = tmp_path / "checkpoints" / "latest.pt"
    if not torch.cuda.is_available():  # the file really says cuda: read naively, it fails here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    resumed = _engine(torch.nn.Linear(3, 2), tmp_path, steps=2)
    assert resumed.step == 1 and torch.equal(resumed.model.weight, model.weight)
    assert all(t.device.type == "cpu" for s in resumed.optimizer.state.values() for t in s.values())
    resumed.fit()
    assert resumed.step == 2


def test_a_checkpoint_written_on_the_cpu_resumes_on_another_device_with_its_optimiser_state_there(tmp_path):
    torch.manual_seed(0)
    _engine(torch.nn.Linear(3, 2), tmp_path, steps=1).fit()
    saved = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in saved["model"].values())
    assert "cuda_rng" not in saved  # a CPU run has no GPU generator to restore
    moved = _engine(torch.nn.Linear(3, 2), tmp_path, device="meta", steps=2)
    assert moved.step == 1 and model_device(moved.model) == META
    state = [t for s in moved.optimizer.state.values() for t in s.values() if t.dim() > 0]
    assert state and all(t.device == META for t in state)
