"""The command line, run as a user runs it (a real subprocess of the installed console script)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import polymodal
from polymodal.modalities.text import load_tokenizer

CLI = [str(Path(sys.executable).with_name("polymodal"))]


def run(*args, check_rc=None):
    proc = subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, minilm_dir):
    """A saved clip-minilm-tiny with the MiniLM tokenizer beside it (untrained image tower)."""
    folder = tmp_path_factory.mktemp("ckpt") / "model"
    torch.manual_seed(0)
    model = polymodal.create("clip-minilm-tiny")
    polymodal.save(model, folder)
    load_tokenizer(minilm_dir).save(folder)
    return folder


@pytest.fixture
def images(tmp_path):
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (80, 64), colour).save(p)
        paths.append(p)
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"not an image")
    return paths, bad


@pytest.mark.slow
def test_models_lists_presets_with_parameter_counts():
    out = run("models", check_rc=0).stdout
    assert "clip-vit-b-32" in out and "151.3M" in out and "vit-b-16" in out and "86.6M" in out


@pytest.mark.slow
def test_info_reports_layout_and_parameters(fixtures, checkpoint):
    out = run("info", fixtures / "clip_hf", check_rc=0).stdout
    assert "layout: hf-clip" in out and "family: clip" in out
    from cli_runs import cli_in_process  # the subprocess above covers the start-up; these, what info says

    out = cli_in_process("info", checkpoint).stdout
    assert "layout: polymodal" in out
    assert f"parameters: {sum(p.numel() for p in polymodal.load(checkpoint).parameters()):,}" in out
    bad = cli_in_process("info", checkpoint / "missing.safetensors")
    assert bad.returncode == 2 and "not found" in bad.stderr


def test_embed_reports_bad_files_and_keeps_the_rest(checkpoint, images, tmp_path):
    good, bad = images
    texts = tmp_path / "captions.txt"
    texts.write_text("a red square\n\na blue square\n")
    proc = run("embed", *good, bad, texts, "--checkpoint", checkpoint, "--out", tmp_path / "emb", check_rc=1)
    assert "corrupt.png" in proc.stderr
    matrix = np.load(tmp_path / "emb" / "embeddings.npy")
    rows = [json.loads(line) for line in (tmp_path / "emb" / "index.jsonl").read_text().splitlines()]
    assert matrix.shape == (4, 64) and len(rows) == 4
    assert [r["modality"] for r in rows] == ["image", "image", "text", "text"]
    assert rows[3]["line"] == 3 and rows[3]["text"] == "a blue square"
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, rtol=1e-5)
    # The rows equal the library's own embeddings of the same inputs.
    from polymodal.tasks import Embedder

    enc = Embedder.from_checkpoint(checkpoint)
    np.testing.assert_allclose(matrix[2], enc.embed_texts(["a red square"])[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(matrix[0], enc.embed_images([good[0]])[0].numpy(), atol=1e-5)


@pytest.mark.slow
def test_zero_shot_ranks_labels_and_reports_bad_images(checkpoint, images):
    good, bad = images
    proc = run("zero-shot", *good, bad, "--checkpoint", checkpoint, "--labels", "red,blue,green", "--json",
               check_rc=1)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["image"] for x in lines] == [str(p) for p in good]
    for x in lines:
        probs = [lab["p"] for lab in x["labels"]]
        assert sorted({lab["label"] for lab in x["labels"]}) == ["blue", "green", "red"]
        assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-3
    assert "corrupt.png" in proc.stderr
    assert "--labels" in run("zero-shot", *good, "--checkpoint", checkpoint, check_rc=2).stderr


def test_checkpoint_without_tokenizer_is_a_clear_error(checkpoint, images, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.safetensors", "config.json"):
        shutil.copy(checkpoint / name, bare / name)
    proc = run("zero-shot", *images[0], "--checkpoint", bare, "--labels", "a,b", check_rc=2)
    assert "no tokenizer" in proc.stderr


@pytest.mark.slow
def test_bf16_zero_shot_agrees_with_fp32(checkpoint, images):
    from cli_runs import cli_in_process  # numbers, not the process: no start-up each

    fp32 = cli_in_process("zero-shot", *images[0], "--checkpoint", checkpoint, "--labels", "red,blue,green", "--json")
    bf16 = cli_in_process("zero-shot", *images[0], "--checkpoint", checkpoint, "--labels", "red,blue,green", "--json",
                          "--bf16")
    assert fp32.returncode == bf16.returncode == 0, fp32.stderr + bf16.stderr
    for a, b in zip(fp32.stdout.splitlines(), bf16.stdout.splitlines(), strict=True):
        pa = {x["label"]: x["p"] for x in json.loads(a)["labels"]}
        pb = {x["label"]: x["p"] for x in json.loads(b)["labels"]}
        assert max(abs(pa[k] - pb[k]) for k in pa) < 0.05


@pytest.mark.slow
def test_world_files_writes_ordinary_files_and_labels(tmp_path):
    run("world", "files", "--out", tmp_path / "f", "--n", 2, "--modalities", "image,caption,imu",
        "--labels", tmp_path / "labels.jsonl", check_rc=0)
    names = sorted(p.name for p in (tmp_path / "f").iterdir())
    assert names == ["scene00000.png", "scene00000.txt", "scene00000_imu.npy",
                     "scene00001.png", "scene00001.txt", "scene00001_imu.npy"]
    labels = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert [r["scene"] for r in labels] == ["scene00000", "scene00001"] and all(r["objects"] for r in labels)
    bad = run("world", "files", "--out", tmp_path / "g", "--n", 1, "--modalities", "smell")
    assert bad.returncode == 2 and "unknown file modalities ['smell']" in bad.stderr


def test_regions_writes_npz_per_image_and_reports_the_rest(checkpoint, images, tmp_path):
    from polymodal.data.regions import read_npz

    good, bad = images
    boxes = {good[0].name: [[0, 0, 32, 32], [16, 16, 64, 64]], good[1].name: [[4, 4, 60, 40]],
             bad.name: [[0, 0, 8, 8]]}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    extra = tmp_path / "unboxed.png"
    Image.new("RGB", (64, 64)).save(extra)
    proc = run("regions", *good, bad, extra, "--boxes", tmp_path / "boxes.json", "--checkpoint", checkpoint,
               "--out", tmp_path / "feats", check_rc=1)
    assert "corrupt.png" in proc.stderr and "no boxes for unboxed.png" in proc.stderr
    first = read_npz(tmp_path / "feats" / f"{good[0].stem}.npz")
    assert first.features.shape == (2, 128) and first.boxes.tolist()[1] == [16, 16, 64, 64]
    assert sorted(p.name for p in (tmp_path / "feats").iterdir()) == sorted(f"{g.stem}.npz" for g in good)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without a GPU")
def test_asking_for_a_gpu_on_a_machine_without_one_is_a_clear_error_on_every_command(checkpoint, images, tmp_path):
    from typer.testing import CliRunner

    from polymodal.cli import app

    good, _ = images
    commands = {
        "embed": ["embed", str(good[0]), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "e")],
        "zero-shot": ["zero-shot", str(good[0]), "--checkpoint", str(checkpoint), "--labels", "red,blue"],
        "index": ["index", str(tmp_path), "--model", str(checkpoint), "--out", str(tmp_path / "i")],
        "train": ["train", "configs/clip-world-tiny.yaml", f"train.out={tmp_path / 't'}"],
        "bind": ["bind", "configs/imagebind-world.yaml", f"out={tmp_path / 'b'}"],
        "eval": ["eval", "configs/clip-world-tiny.yaml", "--checkpoint", str(checkpoint)],
    }
    for name, args in commands.items():
        result = CliRunner().invoke(app, [*args, "--device", "cuda"])
        text = " ".join(result.output.split())  # rich wraps long lines
        assert result.exit_code != 0 and "sees no CUDA GPU" in text and "Traceback" not in text, (name, text)
        assert not (tmp_path / "t" / "checkpoints").exists()  # nothing ran
