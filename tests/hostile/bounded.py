"""Hostile inputs, built at test time by small builders (no stored bombs), fed to the real commands as
subprocesses under an address-space limit: each must end in a one-line error that names the file (the
rest of a batch going on) and stay inside its memory bound."""

from __future__ import annotations

import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CLI = str(Path(sys.executable).with_name("polymodal"))
# What a command may take in address space: its baseline (Python, torch, a tiny model: ≈ 1.5 GiB of
# mappings) plus the ~1 GiB the budget rule allows any input file to cost.
ADDRESS_SPACE = 3 << 30


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_bounded(*args, limit: int = ADDRESS_SPACE, timeout: float = 120, cwd=None) -> Ran:
    """``polymodal ARGS`` in a subprocess whose address space is capped at ``limit`` bytes: a command
    that tries to allocate past its budget dies (MemoryError / killed) instead of passing quietly."""

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          preexec_fn=cap, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
                                               "OMP_NUM_THREADS": "1"})
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def one_line_error(ran: Ran, *named: str) -> str:
    """The command failed with a clean message (no traceback, no MemoryError) naming each of ``named``."""
    text = ran.output
    assert "Traceback" not in text and "MemoryError" not in text, text
    for name in named:
        assert name in " ".join(text.split()), (name, text)
    return text


def run_python_bounded(code: str, limit: int = 3 << 30, timeout: float = 120) -> Ran:
    """``python -c CODE`` (importing polymodal as the commands do) under the same address-space cap."""

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=cap, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    return Ran(proc.returncode, proc.stdout, proc.stderr)
