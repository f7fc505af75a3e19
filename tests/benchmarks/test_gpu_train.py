"""benchmarks/gpu_train.py at toy size on the CPU (the GPU figure comes from the same script on a
GPU): it runs ours and transformers' CLIP from the same weights on the same batch, counts FLOPs,
and writes the table's JSON. No timing is asserted; what the run computes is."""

import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_train.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gpu_benchmark_runs_at_toy_size_and_both_models_train_alike(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    result = _load().main(["--device", "cpu", "--tiny", "--no-compile", "--steps", "1", "--warmup", "1",
                           "--peak-tflops", "1.0", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    rows = {r["case"]: r for r in result["rows"]}
    assert set(rows) == {"ours eager", "hf eager"}
    ours, hf = rows["ours eager"], rows["hf eager"]
    # Same weights, batch and optimiser for the same number of steps: the same loss (bf16 autocast).
    assert math.isfinite(ours["final_loss"]) and abs(ours["final_loss"] - hf["final_loss"]) < 0.02 * hf["final_loss"]
    # Both do (nearly) the same work per step, so MFU compares like with like.
    assert ours["train_step_flops"] > 0 and abs(ours["train_step_flops"] / hf["train_step_flops"] - 1) < 0.05
    assert ours["mfu"] == ours["achieved_tflops"] / 1.0  # --peak-tflops 1: MFU is the achieved TFLOP/s
    assert ours["train_samples_per_s"] > 0 and ours["encode_images_per_s"] > 0
    assert set(result["ours_vs_best_hf"]) == {"ours eager"}
    printed = capsys.readouterr().out
    assert "ours eager" in printed and "hf eager" in printed and "vs the best HF train step" in printed
