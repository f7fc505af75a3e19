"""The ``polymodal`` command line, one module per command group; each command parses its arguments,
calls the library and prints what came back."""

from . import models, embedding, regions, detect, released, training, search, world, video, documents  # noqa: F401  (they register)
from .app import app

app.add_typer(world.world_app, name="world")
app.add_typer(video.video_app, name="video")
app.add_typer(documents.doc_app, name="doc")

__all__ = ["app"]
