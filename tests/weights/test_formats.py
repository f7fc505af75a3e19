"""Checkpoint containers (safetensors, .bin, OpenAI TorchScript, our own format) and strict errors."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import polymodal
from polymodal.weights import CheckpointError, describe, read_state_dict, trust_torchscript


def _torchscript_archive(sd: dict[str, torch.Tensor], path) -> None:
    """An archive shaped like OpenAI's released ``ViT-B-32.pt``: a scripted module tree whose
    state dict holds the weights plus the metadata scalars OpenAI stores."""
    root = nn.Module()
    for key, tensor in sd.items():
        *parents, name = key.split(".")
        module = root
        for part in parents:
            if not hasattr(module, part):
                module.add_module(part, nn.Module())
            module = getattr(module, part)
        module.register_parameter(name, nn.Parameter(tensor.clone(), requires_grad=False))
    for meta, value in (("input_resolution", 32), ("context_length", 16), ("vocab_size", 1000)):
        root.register_buffer(meta, torch.tensor(value))
    torch.jit.save(torch.jit.script(root), str(path))


def test_openai_torchscript_archive(fixtures, tmp_path):
    folder = fixtures / "clip_openai"
    archive = tmp_path / "ViT-tiny.pt"
    _torchscript_archive(load_file(folder / "weights.safetensors"), archive)
    cfg = json.loads((folder / "config_quickgelu.json").read_text())
    with pytest.raises(CheckpointError, match="ViT-tiny.pt is a TorchScript archive.*--trust-torchscript"):
        polymodal.load(archive, config=cfg)  # code in a checkpoint is never run unless asked for
    with trust_torchscript():
        model = polymodal.load(archive, config=cfg)
    inputs = load_file(folder / "inputs.safetensors")
    expected = load_file(folder / "outputs_quickgelu.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(inputs["images"]), expected["image_features"],
                                   rtol=1e-4, atol=1e-5)


def test_training_checkpoint_with_module_prefix(fixtures, tmp_path):
    sd = load_file(fixtures / "clip_openai" / "weights.safetensors")
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "epoch_3.pt")
    cfg = json.loads((fixtures / "clip_openai" / "config.json").read_text())
    model = polymodal.load(tmp_path / "epoch_3.pt", config=cfg)
    torch.testing.assert_close(model.text.stem.weight, sd["token_embedding.weight"])


@pytest.mark.parametrize("name", ["vit-tiny", "clip-tiny", "bert-tiny"])
def test_save_and_load_roundtrip(tmp_path, name):
    torch.manual_seed(0)
    model = polymodal.create(name).eval()
    polymodal.save(model, tmp_path / "ckpt")
    again = polymodal.load(tmp_path / "ckpt")
    assert again.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    info = describe(tmp_path / "ckpt")
    assert info["layout"] == "polymodal" and info["family"] == name.split("-")[0]
    assert info["parameters"] == sum(p.numel() for p in model.parameters())


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.bin"
    with open(path, "wb") as f:
        pickle.dump({"weight": Evil()}, f)
    with pytest.raises(CheckpointError, match="evil.bin"):
        read_state_dict(path)


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        polymodal.load(bad)
    with pytest.raises(CheckpointError, match="not found"):
        polymodal.load(tmp_path / "nope.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no weights file in folder .*empty"):
        polymodal.load(tmp_path / "empty")


def test_strict_errors_list_missing_unexpected_and_shapes(fixtures, tmp_path):
    sd = load_file(fixtures / "clip_openai" / "weights.safetensors")
    cfg = json.loads((fixtures / "clip_openai" / "config.json").read_text())
    broken = dict(sd)
    del broken["ln_final.weight"]
    broken["visual.extra_head.weight"] = torch.zeros(2)
    save_file(broken, tmp_path / "broken.safetensors")
    with pytest.raises(CheckpointError) as e:
        polymodal.load(tmp_path / "broken.safetensors", config=cfg)
    assert "missing keys: text.norm.weight" in str(e.value) and "visual.extra_head.weight" in str(e.value)
    with pytest.warns(UserWarning, match="text.norm.weight"):
        polymodal.create("clip-tiny", weights=tmp_path / "broken.safetensors", strict=False)

    wrong = dict(sd)
    wrong["visual.ln_post.weight"] = torch.zeros(65)
    save_file(wrong, tmp_path / "wrong.safetensors")
    with pytest.raises(CheckpointError, match=r"visual.norm.weight: checkpoint \(65,\) vs model \(64,\)"):
        polymodal.create("clip-tiny", weights=tmp_path / "wrong.safetensors")


def test_checkpoint_of_another_family_says_what_it_is(fixtures, minilm_dir, tmp_path):
    with pytest.raises(CheckpointError, match="hf-bert"):
        polymodal.load(minilm_dir, config="clip-tiny")
    save_file({"layoutlm.embeddings.x_position_embeddings.weight": torch.zeros(2, 2)},
              tmp_path / "layoutlm.safetensors")
    with pytest.raises(CheckpointError, match="LayoutLM.*not supported yet"):
        polymodal.load(tmp_path / "layoutlm.safetensors")
    with pytest.raises(CheckpointError, match="imagebind checkpoint .imagebind.; it cannot fill a clip model"):
        polymodal.create("clip-tiny", weights=fixtures / "imagebind" / "weights.safetensors")
    with pytest.raises(CheckpointError, match="hf-bert checkpoint .bert.; it cannot fill a vit model"):
        polymodal.create("vit-tiny", weights=minilm_dir)


def test_unknown_preset_lists_known_ones():
    with pytest.raises(KeyError, match="vit-b-16"):
        polymodal.create("vit-gigantic")
