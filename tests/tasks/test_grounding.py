"""Attention grounding (the lecture's claim 2) and `polymodal attention`: words naming a colour or a
shape, the region each head attends to most, chance, and the word × region heat maps."""

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import polymodal
from polymodal.cli import app
from polymodal.world import WorldDataset
from polymodal.world.scene import sample_scene
from polymodal.modalities.text import load_tokenizer
from polymodal.registry import build, preset
from polymodal.tasks import grounding
from polymodal.world.grounding import attribute_words, world_grounding
from polymodal.tasks.region_tower import save_region_tower
from polymodal.world.sources.regions import world_region_captions
from polymodal.tasks.region_tower import region_extractor


@pytest.fixture(scope="module")
def setup(tmp_path_factory, minilm_dir):
    root = tmp_path_factory.mktemp("ground")
    torch.manual_seed(0)
    polymodal.save(polymodal.create("clip-world-tiny"), root / "tower")
    config = preset("visualbert-tiny")
    config.bert.vocab_size, config.visual_dim = 30522, 192  # MiniLM's WordPiece, the tower's width
    config.bert.max_positions = 64
    model = build(config).eval()
    tokenizer = load_tokenizer(minilm_dir, 48)
    polymodal.save(model, root / "vb")
    tokenizer.save(root / "vb")
    save_region_tower(root / "vb", root / "tower", 64)
    data = world_region_captions("val", 24, 0, 64, region_extractor(str(root / "tower")), tokenizer)
    return root, model, tokenizer, data, [sample_scene(0, "val", i) for i in range(24)]


def test_word_ids_name_colours_and_shapes(minilm_dir):
    tokenizer = load_tokenizer(minilm_dir)
    shapes, colours = (grounding.attribute_word_ids(tokenizer, attribute_words(a)) for a in ("shape", "colour"))
    ids = tokenizer.tokenizer.token_to_id
    assert shapes[ids("circle")] == "circle" and shapes[ids("circles")] == "circle" and shapes[ids("disc")] == "circle"
    assert colours[ids("red")] == "red" and ids("red") not in shapes
    with pytest.raises(ValueError, match="choose shape or colour"):
        attribute_words("size")


def test_grounding_counts_the_most_attended_object_region(setup, monkeypatch):
    _, model, tokenizer, data, scenes = setup
    result = world_grounding(model, data, scenes, tokenizer, "colour")
    heads = [v for k, v in result.items() if k.startswith("layer")]
    assert len(heads) == 2 * 2 and all(0 <= v <= 1 for v in heads) and 0 < result["chance"] < 1

    # Attention that is the same for every region: the first object region wins every argmax, so the
    # accuracy is the share of colour words whose scene's first object has that colour.
    def flat(model, ids, regions, attention_mask, region_mask):
        return torch.zeros(1, ids.shape[0], 1, ids.shape[1], regions.shape[1])

    monkeypatch.setattr(grounding, "text_to_region_attention", flat)
    colours = grounding.attribute_word_ids(tokenizer, attribute_words("colour"))
    hits = words = 0
    for i, scene in enumerate(scenes):
        real = int(data.region_mask[i].sum()) - 1
        present = [o.colour for o in scene.objects[:real]]
        if real < 2:
            continue
        for token in data.ids[i, 0][data.mask[i, 0] == 1].tolist():
            if colours.get(token) in present:
                words += 1
                hits += present[0] == colours[token]
    result = world_grounding(model, data, scenes, tokenizer, "colour")
    assert result["words"] == words > 0 and result["layer0_head0"] == pytest.approx(hits / words)


def test_attention_command_draws_the_heat_maps(setup, tmp_path):
    root, *_ = setup
    image = WorldDataset("test", 1, image_size=64, modalities=("image",))[0]["image"]
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / "scene.png")
    runner = CliRunner()
    out = tmp_path / "attn.png"
    r = runner.invoke(app, ["attention", str(root / "vb"), str(tmp_path / "scene.png"), "a red circle left of a star",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "2 layers × 2 heads" in " ".join(r.output.split()) and Image.open(out).size[0] > 100
    r = runner.invoke(app, ["attention", str(root / "tower"), str(tmp_path / "scene.png"), "a red circle"])
    assert r.exit_code == 2 and "single-stream region model" in r.output.replace("\n", " ")
