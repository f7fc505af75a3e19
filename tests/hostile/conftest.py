"""Fixtures of the hostile-input tests (the harness is bounded.py)."""

import pytest


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory, minilm_dir):
    """A saved clip-minilm-tiny with the MiniLM tokenizer beside it."""
    import torch

    import polymodal
    from polymodal.modalities.text import load_tokenizer

    folder = tmp_path_factory.mktemp("hostile") / "clip"
    torch.manual_seed(0)
    polymodal.save(polymodal.create("clip-minilm-tiny"), folder)
    load_tokenizer(minilm_dir).save(folder)
    return folder


def pytest_collection_modifyitems(items):
    """Every hostile test starts commands as subprocesses under a memory cap (seconds each): they run
    with the whole suite (the README's test command), not in the quick `-m "not slow"` loop."""
    here = __import__("pathlib").Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.slow)
