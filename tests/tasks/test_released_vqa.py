"""``polymodal vqa CHECKPOINT photo question --detector D``: a transformers VisualBERT VQA checkpoint asked
about a real photograph, its regions found by the detector; mismatched features and bad pictures refused
by name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_runs import cli_in_process

transformers = pytest.importorskip("transformers")

PICTURES = Path(__file__).parents[1] / "pictures"
DETECTOR = Path(__file__).parents[1] / "fixtures" / "frcnn_vg"
ANSWERS = ["cat", "dog", "sofa", "yes", "no", "two", "red"]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "is", "on", "the", "sofa", "?", "cat", "colour"]


def _checkpoint(folder: Path, visual_dim: int) -> Path:
    config = transformers.VisualBertConfig(vocab_size=len(WORDS) + 20, hidden_size=32, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=40,
                                           visual_embedding_dim=visual_dim, num_labels=len(ANSWERS),
                                           id2label=dict(enumerate(ANSWERS)), label2id={a: i for i, a in enumerate(ANSWERS)})
    torch.manual_seed(0)
    transformers.VisualBertForQuestionAnswering(config).save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(WORDS + [f"[unused{i}]" for i in range(20)]) + "\n")
    return folder


def _run(*args):
    return subprocess.run([sys.executable, "-m", "polymodal.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


def test_a_released_vqa_checkpoint_answers_about_a_photo(tmp_path):
    vqa = _checkpoint(tmp_path / "visualbert-vqa", visual_dim=128)  # the fixture detector's width
    proc = _run("vqa", vqa, PICTURES / "chelsea.jpg", "what is on the sofa?", "--detector", DETECTOR, "-k", "3")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("│")[1:4] for line in proc.stdout.splitlines() if line.count("│") >= 4]
    shown = [(rank.strip(), answer.strip(), float(score)) for rank, answer, score in rows if rank.strip().isdigit()]
    assert [r for r, _, _ in shown] == ["1", "2", "3"]
    assert all(answer in ANSWERS for _, answer, _ in shown)
    scores = [s for _, _, s in shown]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.001


def test_mismatched_features_and_bad_inputs_are_refused_by_name(tmp_path):
    wide = _checkpoint(tmp_path / "wide", visual_dim=2048)
    proc = _run("vqa", wide, PICTURES / "coffee.jpg", "what is on the sofa?", "--detector", DETECTOR)
    assert proc.returncode != 0
    assert "reads 2048-d region features; the detector" in proc.stderr and "gives 128-d" in proc.stderr
    good = _checkpoint(tmp_path / "good", visual_dim=128)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((PICTURES / "coffee.jpg").read_bytes()[:200])
    r = cli_in_process("vqa", good, broken, "what is on the sofa?", "--detector", DETECTOR)
    assert r.returncode != 0 and "broken.jpg" in r.stderr
    (good / "vocab.txt").unlink()
    r = cli_in_process("vqa", good, PICTURES / "coffee.jpg", "what?", "--detector", DETECTOR)
    assert r.returncode != 0 and "no vocab.txt or tokenizer.json" in r.stderr
    r = cli_in_process("vqa", DETECTOR, PICTURES / "coffee.jpg", "what?", "--detector", DETECTOR)
    assert r.returncode != 0 and "not a released VisualBERT or ViLBERT task checkpoint" in r.stderr


def _vilbert_checkpoint(folder: Path, visual_dim: int = 128) -> Path:
    """tests/fixtures/vilbert_tasks with its region projection widened to ``visual_dim``, plus a vocabulary and
    an answers.json: a 12-in-1 folder as a user would arrange it."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    source = Path(__file__).parents[1] / "fixtures" / "vilbert_tasks"
    folder.mkdir()
    shutil.copy(source / "config.json", folder)
    sd = load_file(source / "weights.safetensors")
    g = torch.Generator().manual_seed(3)
    sd["bert.v_embeddings.image_embeddings.weight"] = torch.randn(48, visual_dim, generator=g) / visual_dim ** 0.5
    save_file(sd, folder / "pytorch_model.safetensors")
    (folder / "vocab.txt").write_text("\n".join(WORDS + [f"[unused{i}]" for i in range(200 - len(WORDS))]) + "\n")
    (folder / "answers.json").write_text(json.dumps([f"answer-{i}" for i in range(3129)]))
    return folder


def test_vilbert_12in1_answers_and_points_at_a_region(tmp_path):

    vilbert = _vilbert_checkpoint(tmp_path / "12in1")
    r = cli_in_process("vqa", vilbert, PICTURES / "chelsea.jpg", "what is on the sofa?", "--detector", DETECTOR,
                       "--task", "1", "-k", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("answer-") == 2
    r = cli_in_process("vqa", vilbert, PICTURES / "chelsea.jpg", "what?", "--detector", DETECTOR, "--task", "9")
    assert r.returncode != 0 and "task 9 does not answer questions" in r.stderr
    proc = _run("refer", vilbert, PICTURES / "chelsea.jpg", "the cat on the sofa", "--detector", DETECTOR,
                "--out", tmp_path / "box.png")
    assert proc.returncode == 0, proc.stderr
    import json

    shown = json.loads(proc.stdout)
    x0, y0, x1, y1 = shown["box"]
    assert 0 <= x0 <= x1 <= 200 and 0 <= y0 <= y1 <= 133 and 0 < shown["score"] <= 1
    from PIL import Image

    assert Image.open(tmp_path / "box.png").size == (200, 133)
    wide = _vilbert_checkpoint(tmp_path / "wide", visual_dim=2048)
    r = cli_in_process("refer", wide, PICTURES / "chelsea.jpg", "the cat", "--detector", DETECTOR)
    assert r.returncode != 0 and "reads 2048-d region features" in r.stderr


def test_the_folder_records_its_feature_convention(tmp_path):
    import json

    from polymodal.tasks.released_vqa import ReleasedModel

    vqa = _checkpoint(tmp_path / "v", visual_dim=128)
    (vqa / "detector.json").write_text(json.dumps({"feature_dim": 128, "selection": "fixed", "min_boxes": 3,
                                                    "max_boxes": 5, "nms_thresholds": [0.3, 0.9]}))
    model = ReleasedModel(vqa, DETECTOR)
    assert (model.detector.config.min_boxes, model.detector.config.max_boxes) == (3, 5)
    from polymodal.modalities.image import load_image

    _, regions = model.answer(load_image(PICTURES / "coffee.jpg"), "what is on the sofa?")
    assert 3 <= len(regions.boxes) <= 5
    (vqa / "detector.json").write_text(json.dumps({"feature_dim": 2048}))
    with pytest.raises(ValueError, match="records 2048-d features; the detector"):
        ReleasedModel(vqa, DETECTOR)
    (vqa / "detector.json").write_text(json.dumps({"boxes": 36}))
    with pytest.raises(ValueError, match="expected an object with some of"):
        ReleasedModel(vqa, DETECTOR)


def _visualbert(folder: Path, task: str) -> Path:
    classes = {"nlvr2": "VisualBertForVisualReasoning", "vcr": "VisualBertForMultipleChoice",
               "flickr": "VisualBertForRegionToPhraseAlignment"}
    config = transformers.VisualBertConfig(vocab_size=len(WORDS) + 20, hidden_size=32, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=40,
                                           visual_embedding_dim=128, num_labels=2)
    torch.manual_seed(0)
    getattr(transformers, classes[task])(config).save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(WORDS + [f"[unused{i}]" for i in range(20)]) + "\n")
    return folder


def test_nlvr2_vcr_flickr_and_entailment_from_the_command_line(tmp_path):
    import json

    photo, other = PICTURES / "chelsea.jpg", PICTURES / "coffee.jpg"
    nlvr2 = _visualbert(tmp_path / "nlvr2", "nlvr2")
    proc = _run("verify", nlvr2, photo, other, "the cat is on the sofa", "--detector", DETECTOR)
    assert proc.returncode == 0, proc.stderr
    said = json.loads(proc.stdout)
    assert 0 <= said["probability"] <= 1 and said["true"] == (said["probability"] > 0.5)
    vilbert = _vilbert_checkpoint(tmp_path / "12in1")
    r = cli_in_process("verify", vilbert, photo, other, "the cat is on the sofa", "--detector", DETECTOR)
    assert r.returncode == 0, r.stderr
    vcr = _visualbert(tmp_path / "vcr", "vcr")
    for model in (vcr, vilbert):
        r = cli_in_process("choose", model, photo, "cat", "sofa", "two", "--question", "what is on the sofa?",
                           "--detector", DETECTOR)
        assert r.returncode == 0, r.stderr
        rows = [line for line in r.stdout.splitlines() if line.count("│") >= 4]
        probabilities = [float(line.split("│")[3]) for line in rows if line.split("│")[1].strip().isdigit()]
        assert len(probabilities) == 3 and abs(sum(probabilities) - 1) < 0.01
    r = cli_in_process("choose", vilbert, photo, "a cat", "a cup", "--question", "", "--task", "7", "--detector", DETECTOR)
    assert r.returncode == 0, r.stderr
    r = cli_in_process("entail", vilbert, photo, "an animal is resting", "--detector", DETECTOR)
    assert r.returncode == 0, r.stderr
    said = json.loads(r.stdout)
    assert said["label"] in ("contradiction", "neutral", "entailment")
    assert abs(said["contradiction"] + said["neutral"] + said["entailment"] - 1) < 1e-3
    flickr = _visualbert(tmp_path / "flickr", "flickr")
    r = cli_in_process("refer", flickr, photo, "the cat", "--detector", DETECTOR)
    assert r.returncode == 0, r.stderr
    assert 0 < json.loads(r.stdout)["score"] <= 1
    # A checkpoint for another task is refused by name.
    r = cli_in_process("verify", vcr, photo, other, "the cat", "--detector", DETECTOR)
    assert r.returncode != 0 and "this needs visualbert nlvr2" in r.stderr
    r = cli_in_process("entail", vcr, photo, "the cat", "--detector", DETECTOR)
    assert r.returncode != 0 and "this needs vilbert" in r.stderr
