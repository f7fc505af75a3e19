"""The bottom-up-attention Faster R-CNN against tests/fixtures/frcnn_vg (transformers' LXMERT-demo
``modeling_frcnn.py`` run unmodified, tiny random weights): every stage, the kept boxes exactly, both
checkpoint layouts, and the bottom-up selection rule against its loop definition."""

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import polymodal
from polymodal.layers.boxes import nms
from polymodal.models.frcnn_input import prepare_images
from polymodal.models.region_selection import select_regions
from polymodal.registry import preset
from polymodal.weights import CheckpointError, describe

FIXTURE = Path(__file__).parents[1] / "fixtures" / "frcnn_vg"
TOL = dict(rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def model():
    return polymodal.load(FIXTURE)


@pytest.fixture(scope="module")
def run(model):
    inputs = load_file(FIXTURE / "inputs.safetensors")
    images, sizes, scales = prepare_images([inputs["raw_image_0"], inputs["raw_image_1"]], model.config)
    with torch.no_grad():
        out = model.run(images, sizes)
    return inputs, images, sizes, scales, out


def test_the_demo_folder_loads_as_its_config_says(model):
    assert describe(FIXTURE)["layout"] == "lxmert-frcnn"
    assert model.config == preset("frcnn-vg-tiny")


def test_preprocessing_matches(run):
    inputs, images, sizes, scales, _ = run
    torch.testing.assert_close(images, inputs["images"], rtol=0, atol=1e-5)
    assert sizes.tolist() == inputs["sizes"].tolist()
    torch.testing.assert_close(scales, inputs["scales_yx"])


def test_every_stage_matches(run):
    expected = load_file(FIXTURE / "outputs.safetensors")
    *_, out = run
    torch.testing.assert_close(out["features"], expected["res4"], **TOL)
    torch.testing.assert_close(out["objectness"], expected["rpn_objectness"], **TOL)
    torch.testing.assert_close(out["anchor_deltas"], expected["rpn_anchor_deltas"], **TOL)
    for i in range(2):
        torch.testing.assert_close(out["proposals"][i], expected[f"proposals_{i}"], **TOL)
    torch.testing.assert_close(out["pooled"], expected["pooled_features"], **TOL)
    torch.testing.assert_close(out["class_logits"], expected["obj_logits"], **TOL)
    torch.testing.assert_close(out["attribute_logits"], expected["attr_logits"], **TOL)
    torch.testing.assert_close(out["box_deltas"], expected["box_deltas"], **TOL)


def test_kept_boxes_match_exactly(model, run):
    expected = load_file(FIXTURE / "outputs.safetensors")
    used = json.loads((FIXTURE / "meta.json").read_text())["nms_threshold_used"]
    *_, sizes, scales, out = run
    regions = select_regions(model.config, out, sizes, scales)
    assert [r.nms_threshold for r in regions] == used == [0.05, 0.2]  # image 1 needed the second threshold
    for i, r in enumerate(regions):
        assert r.kept.tolist() == expected[f"kept_{i}"].tolist()
        assert r.classes.tolist() == expected[f"obj_ids_{i}"].tolist()
        assert r.attributes.tolist() == expected[f"attr_ids_{i}"].tolist()
        torch.testing.assert_close(r.boxes, expected[f"boxes_{i}"], **TOL)
        torch.testing.assert_close(r.scores, expected[f"obj_probs_{i}"], **TOL)
        torch.testing.assert_close(r.attribute_scores, expected[f"attr_probs_{i}"], **TOL)
        torch.testing.assert_close(r.features, expected[f"roi_features_{i}"], **TOL)


def _detectron2_pickle(folder: Path) -> Path:
    """The fixture's weights as detectron2's model zoo pickles them: numpy arrays, no anchors, no counters."""
    sd = torch.load(FIXTURE / "pytorch_model.bin", weights_only=True)
    arrays = {k: v.numpy() for k, v in sd.items() if "cell_anchors" not in k and "num_batches" not in k}
    folder.mkdir()
    with open(folder / "faster_rcnn_from_caffe_attr.pkl", "wb") as f:
        pickle.dump({"model": arrays, "__author__": "polymodal tests"}, f)
    return folder


def test_the_detectron2_pickle_loads_to_the_same_model(model, tmp_path):
    folder = _detectron2_pickle(tmp_path / "d2")
    shutil.copy(FIXTURE / "config.yaml", folder)
    assert describe(folder)["layout"] == "detectron2-frcnn-vg"
    loaded = polymodal.load(folder)
    assert loaded.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b), k
    # Without config.yaml the VG defaults apply: 15 anchors per cell, which this tiny RPN does not predict.
    (folder / "config.yaml").unlink()
    with pytest.raises(CheckpointError, match="RPN predicts 9 anchors per cell; the anchor settings give 15"):
        polymodal.load(folder)


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch boom-was-run",))


def test_a_pickle_that_runs_code_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"model": {"backbone.stem.conv1.weight": _Boom()}}, f)
    with pytest.raises(CheckpointError, match=r"evil\.pkl.*(posix|os)\.system"):
        polymodal.load(tmp_path / "evil.pkl")
    assert not (tmp_path / "boom-was-run").exists()


def test_a_config_whose_anchors_do_not_fit_is_refused(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(FIXTURE, folder)
    text = (folder / "config.yaml").read_text().replace("- 64", "- 80")
    (folder / "config.yaml").write_text(text)
    with pytest.raises(CheckpointError, match="cell_anchors.0 does not match"):
        polymodal.load(folder)


def test_vocabulary_files_name_the_classes(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(FIXTURE, folder)
    (folder / "objects_vocab.txt").write_text("\n".join(f"thing{i},synonym" for i in range(12)))
    (folder / "attributes_vocab.txt").write_text("\n".join(f"colour{i}" for i in range(6)))
    with pytest.raises(CheckpointError, match="attributes_vocab.txt names 6 labels; the checkpoint has 7"):
        polymodal.load(folder)
    (folder / "attributes_vocab.txt").write_text("\n".join(f"colour{i}" for i in range(7)))
    config = polymodal.load(folder).config
    assert config.class_names[3] == "thing3" and config.attribute_names[6] == "colour6"


def _bottom_up_by_loops(proposals, probs, nms_threshold, score_threshold, lo, hi):
    """bottom-up-attention's generate_tsv.py rule, written out: per-class NMS, best kept score per box."""
    confidence = np.zeros(len(proposals))
    for k in range(probs.shape[1] - 1):  # background last
        for i in nms(proposals, probs[:, k], nms_threshold).tolist():
            confidence[i] = max(confidence[i], float(probs[i, k]))
    keep = [i for i in range(len(proposals)) if confidence[i] >= score_threshold]
    ranked = sorted(range(len(proposals)), key=lambda i: (-confidence[i], i))
    if len(keep) < lo:
        return ranked[:lo]
    return [i for i in ranked if confidence[i] >= score_threshold][:hi]


@pytest.mark.parametrize("threshold", [0.12, 0.15, 0.5])
def test_bottom_up_selection_follows_its_definition(model, run, threshold):
    from dataclasses import replace

    *_, sizes, scales, out = run
    config = replace(model.config, selection="bottom-up", nms_thresholds=(0.3,), score_threshold=threshold,
                     min_boxes=5, max_boxes=9)
    regions = select_regions(config, out, sizes, scales)
    counts = [len(p) for p in out["proposals"]]
    for r, proposals, probs in zip(regions, out["proposals"], torch.softmax(out["class_logits"], -1).split(counts)):
        assert r.kept.tolist() == _bottom_up_by_loops(proposals, probs, 0.3, threshold, 5, 9)
        assert 5 <= len(r.kept) <= 9
        torch.testing.assert_close(r.boxes, proposals[r.kept] * torch.stack([scales[0, 1], scales[0, 0]] * 2)
                                   if r is regions[0] else r.boxes)


def test_fixed_selection_tops_up_where_no_threshold_reaches_the_minimum(model, run):
    from dataclasses import replace

    *_, sizes, scales, out = run
    config = replace(model.config, nms_thresholds=(0.05,), min_boxes=30, max_boxes=40)
    regions = select_regions(config, out, sizes, scales)
    assert [len(r.kept) for r in regions] == [30, 30]  # the reference raises here
    assert all(len(set(r.kept.tolist())) == 30 for r in regions)


def test_info_names_the_layout_and_the_licence_the_folder_carries(tmp_path):
    from cli_runs import cli_in_process

    folder = tmp_path / "frcnn-vg-finetuned"
    shutil.copytree(FIXTURE, folder)
    r = cli_in_process("info", folder)
    assert r.returncode == 0 and "lxmert-frcnn" in r.stdout and "licence: none in the folder" in r.stdout
    (folder / "README.md").write_text("---\nlicense: apache-2.0\ntags: [detection]\n---\n# card\n")
    r = cli_in_process("info", folder)
    assert "licence: apache-2.0 (README.md)" in r.stdout
    (folder / "README.md").unlink()
    (folder / "LICENSE").write_text("\n[bold]MIT License[/bold]\n\nPermission is hereby granted…\n")
    assert "licence: [bold]MIT License[/bold] (LICENSE)" in cli_in_process("info", folder).stdout  # printed, not styled


def test_convert_writes_either_layout_once_as_safetensors(model, tmp_path):
    from cli_runs import cli_in_process

    folder = _detectron2_pickle(tmp_path / "d2")
    shutil.copy(FIXTURE / "config.yaml", folder)
    r = cli_in_process("convert", folder, tmp_path / "ours")
    assert r.returncode == 0, r.stderr
    assert describe(tmp_path / "ours")["layout"] == "polymodal"
    converted = polymodal.load(tmp_path / "ours")
    assert converted.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), converted.state_dict().values()))
