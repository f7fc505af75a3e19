import pytest
import torch

import polymodal


@pytest.fixture(scope="session")
def tower(tmp_path_factory):
    """A saved untrained clip-world-tiny (a conv-stem 64 px image tower, width 192): what reads the
    region models' regions in their tests."""
    folder = tmp_path_factory.mktemp("tower") / "clip"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        polymodal.save(polymodal.create("clip-world-tiny"), folder)
    return folder
