"""Every checkpoint layout is a registered object, tried most specific first; every fixture in
tests/fixtures is named by its own family, by the library and by ``polymodal info``."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import polymodal
from polymodal.weights import CheckpointError, describe, detect_layout, layouts, read_state_dict

# fixture folder → (layout, family, loadable today)
EXPECTED = {
    "clip_openai": ("openai-clip", "clip", True),
    "clip_hf": ("hf-clip", "clip", True),
    "imagebind": ("imagebind", "imagebind", True),
    "visualbert": ("hf-visualbert", "visualbert", True),
    "vilbert": ("vilbert", "vilbert", True),
    "layoutlmv2": ("hf-layoutlmv2", "layoutlmv2", True),
    "layoutlmv3": ("hf-layoutlmv3", "layoutlmv3", True),
    "videoclip": ("mmpt-videoclip", "videoclip", True),
    "s3d": ("s3d-howto100m", "s3d", True),
    "frcnn_vg": ("lxmert-frcnn", "frcnn", True),
    "vilbert_tasks": ("vilbert-tasks", "vilbert-task", True),
}
NOT_FIXTURES = {"makers"}  # the scripts that made some of them


def test_every_fixture_folder_is_expected(fixtures):
    assert sorted(p.name for p in fixtures.iterdir() if p.is_dir() and p.name not in NOT_FIXTURES) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_is_detected_as_its_own_family(fixtures, name):
    layout, family, supported = EXPECTED[name]
    assert detect_layout(read_state_dict(fixtures / name), fixtures / name) == layout
    d = describe(fixtures / name)
    assert (d["layout"], d["family"], d["supported"]) == (layout, family, supported)
    if not supported:
        with pytest.raises(CheckpointError, match=f"{family} family.*not supported yet"):
            polymodal.load(fixtures / name)


def test_polymodal_info_names_every_fixture(fixtures):
    folders = [fixtures / name for name in sorted(EXPECTED)]
    cli = str(Path(sys.executable).with_name("polymodal"))
    proc = subprocess.run([cli, "info", *map(str, folders)], capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    blocks = proc.stdout.split(str(fixtures))[1:]
    assert len(blocks) == len(EXPECTED)
    for block, name in zip(blocks, sorted(EXPECTED)):
        layout, family, supported = EXPECTED[name]
        assert block.startswith(f"/{name}/") and f"layout: {layout} (" in block and f"family: {family}\n" in block
        assert ("not supported yet" in block) != supported
        assert "hf-bert" not in block


def test_layouts_are_tried_most_specific_first():
    order = [layout.name for layout in layouts()]
    assert order[0] == "polymodal" and order[-1] == "hf-bert"  # every BERT-based family outranks plain BERT
    for specific in ("hf-visualbert", "vilbert", "hf-layoutlmv2", "hf-layoutlmv3", "mmpt-videoclip"):
        assert order.index(specific) < order.index("hf-bert")
    assert order.index("hf-layoutlmv2") < order.index("hf-layoutlmv3") < order.index("hf-layoutlm")


V1_KEYS = {  # today's key prefix → what polymodal 0.1 wrote
    "clip-minilm-tiny": [("visual.stem.", "visual.patch_embed."), ("text.stem.", "text.embed.")],
    "imagebind-tiny": [("encoders.image.", "encoders.vision."), ("postprocessors.image.", "postprocessors.vision."),
                       ("encoders.text.stem.", "encoders.text.token_embed.")],
}


@pytest.mark.parametrize("name", sorted(V1_KEYS))
def test_version_1_checkpoints_still_load(name, tmp_path):
    """polymodal 0.1 saved stems as patch_embed / token_embed / embed, ImageBind's image encoder as
    "vision" and configs without kinds; such a folder loads into today's names, tensor for tensor."""
    import json

    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = polymodal.create(name).eval()
    polymodal.save(model, tmp_path / "v2")
    old = {}
    for k, v in model.state_dict().items():
        for new, before in V1_KEYS[name]:
            if k.startswith(new):
                k = before + k[len(new):]
                break
        old[k] = v.contiguous()
    assert len(set(old) - set(model.state_dict())) >= 5  # the old names really differ
    (tmp_path / "v1").mkdir()
    save_file(old, tmp_path / "v1" / "model.safetensors")
    cfg = json.loads((tmp_path / "v2" / "config.json").read_text())
    untag = lambda x: {k: untag(v) for k, v in x.items() if k != "kind"} if isinstance(x, dict) else x  # noqa: E731
    v1 = untag(cfg["config"])
    if name.startswith("imagebind"):
        v1 = {k.replace("image", "vision") if k in ("image", "image_patch", "image_stem", "image_stem_channels")
              else k: v for k, v in v1.items()}
    (tmp_path / "v1" / "config.json").write_text(json.dumps({**cfg, "version": 1, "config": v1}))
    loaded = polymodal.load(tmp_path / "v1")
    assert loaded.config == model.config
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v, rtol=0, atol=0)
