"""A model folder's config.json from outside: every size is typed and bounded by name before anything
is built, and a config that describes a far larger model than its weights is refused before the
real model is allocated."""

import json
import shutil

import pytest
from bounded import one_line_error, run_bounded


@pytest.mark.parametrize("key, value, message", [
    ("mlp_hidden", 4_000_000, "mlp_hidden: 4000000 is outside"),
    ("layers", 1_000_000, "layers: 1000000 is outside 0..1024"),
    ("heads", 0, "heads: 0 is outside 1..1024"),
    ("width", "512", "width: expected int, got str '512'"),
])
def test_hostile_config_sizes_are_one_line_errors_within_the_bound(tmp_path, tiny_clip, key, value, message):
    folder = tmp_path / "m"
    shutil.copytree(tiny_clip, folder)
    config = json.loads((folder / "config.json").read_text())
    vision = config["config"]["vision"]
    assert key in vision, sorted(vision)
    vision[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    ran = run_bounded("info", folder)
    assert ran.returncode != 0
    one_line_error(ran, message)


def test_a_config_far_larger_than_its_weights_is_refused_before_building(tmp_path, tiny_clip):
    folder = tmp_path / "m"
    shutil.copytree(tiny_clip, folder)
    config = json.loads((folder / "config.json").read_text())
    config["config"]["vision"]["mlp_hidden"] = 200_000  # inside the range, but 100× the weights the file holds
    (folder / "config.json").write_text(json.dumps(config))
    ran = run_bounded("embed", tmp_path / "none.png", "--checkpoint", folder, "--out", tmp_path / "o")
    assert ran.returncode != 0
    one_line_error(ran, "its config describes a model of", "the config does not belong to these weights")


def test_a_document_processor_file_with_a_huge_image_size_is_refused_by_name(minilm_dir):
    from tokenizers import Tokenizer

    from polymodal.documents.processor import DocumentProcessor

    tok = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    with pytest.raises(ValueError, match=r"document_processor.json: image_size must be a whole number in 16..1024, got 20000"):
        DocumentProcessor(tok, image_size=20000)
    with pytest.raises(ValueError, match="max_tokens must be a whole number"):
        DocumentProcessor(tok, max_tokens="512")


def test_a_hugging_face_config_is_ranged_too_before_anything_is_built(tmp_path, fixtures):
    """A HF CLIP folder whose config.json claims 10⁶ vision layers: the inferred config is checked
    by name before even the meta-device build."""
    folder = tmp_path / "hf"
    shutil.copytree(fixtures / "clip_hf", folder)
    config = json.loads((folder / "config.json").read_text())
    config["hf_config"]["vision_config"]["num_hidden_layers"] = 1_000_000  # the fixture keeps HF's config here
    (folder / "config.json").write_text(json.dumps(config))
    ran = run_bounded("embed", tmp_path / "none.png", "--checkpoint", folder, "--out", tmp_path / "o")
    assert ran.returncode != 0
    one_line_error(ran, "layers: 1000000 is outside 0..1024")
