"""The README's pipeline end to end at toy sizes: every stage runs and leaves its outputs."""

import json

import pytest

from polymodal.world.recipes.pipeline import QUICK, run_pipeline
from polymodal.search.store import Store


@pytest.mark.slow
def test_pipeline_runs_every_stage(tmp_path):
    lines = []
    summary = run_pipeline(tmp_path / "run", QUICK, report=lines.append)
    run = tmp_path / "run"
    for name in ("clip/model/config.json", "imagebind/model/config.json", "imagebind/results.md", "report.md",
                 "report.html", "binding_curves.png", "retrieval_examples.png", "similarity_matrix.png",
                 "summary.json"):
        assert (run / name).is_file(), name
    html = (run / "report.html").read_text()
    assert "<table>" in html and 'src="similarity_matrix.png"' in html and "http" not in html
    assert summary["index"]["indexed"] == {**{m: QUICK.index_scenes for m in
                                              ("image", "audio", "video", "text", "depth", "thermal", "imu")},
                                           "pdf": QUICK.index_documents}  # scans of one page each
    assert Store(run / "index").ntotal() == 7 * QUICK.index_scenes + QUICK.index_documents
    assert (run / "doc-qa" / "model" / "config.json").is_file()
    demo = summary["demo"]
    assert len(demo["hits"]) == 5 and demo["ask"]["question"] and demo["ask"]["pages"]
    assert any(line.startswith("Hybrid search:  polymodal search") for line in lines)
    assert any(line.startswith("Ask:  polymodal ask") for line in lines)
    assert json.loads((run / "summary.json").read_text())["report"].endswith("report.html")
    assert any(line.startswith("Serve the UI:  polymodal serve") for line in lines)
