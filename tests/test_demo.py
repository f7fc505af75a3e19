"""The main job, shortened: it trains, saves a loadable checkpoint with its tokenizer, and its
zero-shot accuracy is above chance on seen and on held-out colour–shape pairs."""

import io
import json

from rich.console import Console

from polymodal.demo import run_demo
from polymodal.tasks import Embedder


def test_short_demo_learns_above_chance(tmp_path):
    results = run_demo(tmp_path, steps=300, seed=0, console=Console(file=io.StringIO()))
    chance = results["chance"]
    assert chance == round(1 / 24, 4)
    assert results["seen pairs"]["top1"] > 3 * chance
    assert results["held-out pairs"]["top3"] > 3 * 3 * chance
    encoder = Embedder.from_checkpoint(tmp_path / "model")
    assert encoder.tokenizer is not None and encoder.dim == 64
    assert len((tmp_path / "labels.txt").read_text().split()) == 48  # 24 two-word labels
    assert json.loads(json.dumps(results)) == results
