"""Self-registering entries (families, checkpoint layouts, modalities, objective kinds): each registry is filled by
importing every module of its package, so adding an entry is adding a file."""

from __future__ import annotations

import importlib
import pkgutil


def import_all(package_name: str, skip: tuple[str, ...] = ("__main__",)) -> None:
    """Import every module of ``package_name`` but ``skip`` (entry points); already-imported ones
    cost a dict look-up."""
    package = importlib.import_module(package_name)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in skip:
            importlib.import_module(f"{package_name}.{info.name}")
