"""Every registered preset builds (on the meta device), every small one runs forward and backward
from its family's example inputs, and survives a save → load round trip; configs (de)serialise
generically, including nested and version-1 ones."""

import json
from dataclasses import dataclass

import pytest
import torch

import polymodal
from polymodal.registry import (FAMILIES, PRESETS, build, config_from_dict, config_to_dict, example_inputs,
                                family_of, preset, register_family, register_preset)

SMALL = 40e6  # parameters: presets below this run for real in tests


def _n_params(name: str) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build(preset(name)).parameters())


SIZES = {name: _n_params(name) for name in sorted(PRESETS)}
SMALL_PRESETS = [n for n, size in SIZES.items() if size < SMALL]


def _tensors(out):
    """Every floating tensor in a model output (a tensor, or a dict of them)."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    return [t for v in out.values() for t in _tensors(v)]


def test_every_family_is_registered_with_presets_and_inputs():
    assert {"vit", "clip", "bert", "clip-text", "imagebind"} <= set(FAMILIES)
    assert len(SMALL_PRESETS) >= 6 and len(SIZES) - len(SMALL_PRESETS) >= 10
    for fam in FAMILIES.values():
        assert fam.example_inputs is not None, fam.name


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_on_meta_with_example_inputs(name):
    config = preset(name)
    with torch.device("meta"):
        model = build(config)
        inputs = example_inputs(config)
    assert family_of(config) in FAMILIES and SIZES[name] > 0
    assert type(model.config) is type(config)
    assert inputs  # a family without example inputs could not be tested below


@pytest.mark.parametrize("name", SMALL_PRESETS)
@pytest.mark.slow
def test_small_presets_forward_backward(name):
    torch.manual_seed(0)
    model = polymodal.create(name).train()
    out = model(**example_inputs(model.config))
    tensors = _tensors(out)
    assert tensors and all(t.shape[0] == 2 and torch.isfinite(t).all() for t in tensors if t.dim())
    sum(t.float().square().mean() for t in tensors).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    # BERT's tanh pooler is unused with mean pooling; everything else must receive a gradient.
    assert all(n.split(".")[-3 if n.endswith(("weight", "bias")) else -2] == "pooler" for n in no_grad), no_grad


@pytest.mark.parametrize("name", SMALL_PRESETS)
@pytest.mark.slow
def test_small_presets_save_load_round_trip(name, tmp_path):
    torch.manual_seed(0)
    model = polymodal.create(name).eval()
    inputs = example_inputs(model.config)
    polymodal.save(model, tmp_path / name)
    loaded = polymodal.load(tmp_path / name)
    assert config_to_dict(loaded.config) == config_to_dict(model.config)
    with torch.no_grad():
        for a, b in zip(_tensors(model(**inputs)), _tensors(loaded(**inputs)), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_nested_configs_round_trip_through_json_with_their_kind():
    config = preset("imagebind-world")  # nested: BERT text tower, tower configs, a tuple, a dict
    d = json.loads(json.dumps(config_to_dict(config)))
    assert d["config"]["text"]["kind"] == "bert" and d["config"]["audio"]["kind"] == "imagebind-tower"
    assert config_from_dict(d) == config
    with pytest.raises(ValueError, match=r"unknown imagebind.audio config keys: \['depth_of_field'\]"):
        config_from_dict({**d, "config": {**d["config"], "audio": {**d["config"]["audio"], "depth_of_field": 1}}})
    with pytest.raises(ValueError, match="unknown family 'gpt'"):
        config_from_dict({"family": "gpt", "config": {}})


def test_version_1_configs_without_kinds_still_load():
    """A config.json written before configs were tagged: no 'kind', and CLIP's old text_type key."""
    d = config_to_dict(preset("clip-minilm-tiny"))

    def untag(x):
        return {k: untag(v) for k, v in x.items() if k != "kind"} if isinstance(x, dict) else x

    v1 = {"family": "clip", "config": {**untag(d["config"]), "text_type": "bert"}}
    assert config_from_dict(v1) == preset("clip-minilm-tiny")
    v1_causal = {"family": "clip", "config": {**untag(config_to_dict(preset("clip-tiny"))["config"]),
                                              "text_type": "causal"}}
    assert config_from_dict(v1_causal) == preset("clip-tiny")


def test_a_new_family_is_one_registration(tmp_path):
    """What docs/architecture.md promises: a config, a module, one register_family call and a preset."""
    from torch import nn

    @dataclass
    class ToyConfig:
        width: int = 4

    class Toy(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.proj = nn.Linear(config.width, 2)

        def forward(self, x):
            return self.proj(x)

    register_family("toy-test", ToyConfig, Toy, example_inputs=lambda c: {"x": torch.randn(2, c.width)})
    register_preset("toy-test-tiny")(lambda: ToyConfig(width=3))
    try:
        model = polymodal.create("toy-test-tiny")
        assert model(**example_inputs(model.config)).shape == (2, 2)
        polymodal.save(model, tmp_path / "toy")
        loaded = polymodal.load(tmp_path / "toy")
        assert isinstance(loaded, Toy) and loaded.config == ToyConfig(width=3)
        with pytest.raises(ValueError, match="already registered"):
            register_preset("toy-test-tiny")(lambda: ToyConfig())
    finally:
        from polymodal import registry

        registry.PRESETS.pop("toy-test-tiny")
        registry.FAMILIES.pop("toy-test")
