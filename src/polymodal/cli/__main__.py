"""``python -m polymodal.cli``: the same as ``polymodal``."""

from . import app

app()
