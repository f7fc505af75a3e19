"""The package's layering (pyproject.toml's import-linter contracts): the core never imports what is
built on it, inference never imports training, only the CLI imports the synthetic world, and no two
packages import each other."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is a test dependency (pip install -e .[test])"
    run = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "4 kept, 0 broken" in run.stdout


def test_a_broken_contract_is_caught(tmp_path):
    """The check can fail: a copy of the package whose model layer imports training breaks it."""
    shutil.copytree(ROOT / "src" / "polymodal", tmp_path / "polymodal")
    bad = tmp_path / "polymodal" / "layers" / "mlp.py"
    bad.write_text(bad.read_text() + "\nfrom ..train import kinds  # noqa\n")
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    run = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert run.returncode != 0 and "The core never imports the layers above it BROKEN" in run.stdout
