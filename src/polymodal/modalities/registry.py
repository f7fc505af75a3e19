"""Every modality a model can embed, registered where its reader is defined.

A :class:`Modality` names the kind of file, the model input it feeds (video frames and PDF pages
feed the ``image`` encoder), how one file becomes one unbatched input under a model's
:class:`~polymodal.modalities.processor.Processor`, and how many dimensions that input has (one
more means a leading clip axis, whose embeddings are averaged). Adding a modality is a new file in
``polymodal/modalities`` with its reader and one :func:`register_modality` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..plugins import import_all


@dataclass(frozen=True)
class Modality:
    name: str
    encoder: str  # the model input this modality feeds
    sample_dims: int  # dimensions of one unbatched input of the encoder (without a clip axis)
    read: Callable[[Path, Any], Any]  # (file, processor) → one unbatched input (text: the string)
    clips: bool = False  # read() returns [clips, ...]: a clip axis the embedder averages over
    processing: tuple[str, ...] | None = None  # the Processor parts read() uses (default: its own name)
    # (geometry config, width) → (stem module, tokens it makes), for a family with one encoder per
    # modality (ImageBind; the config holds e.g. ``audio_patch``); None for modalities that feed
    # another's encoder (video, PDF) or have their own tower (text).
    stem: Callable[[Any, int], tuple[Any, int]] | None = None


MODALITIES: dict[str, Modality] = {}


def register_modality(modality: Modality) -> Modality:
    if modality.name in MODALITIES:
        raise ValueError(f"modality {modality.name!r} is already registered")
    MODALITIES[modality.name] = modality
    return modality


def load_all() -> None:
    import_all("polymodal.modalities")


def modality(name: str) -> Modality:
    load_all()
    try:
        return MODALITIES[name]
    except KeyError:
        raise KeyError(f"unknown modality {name!r}; known: {', '.join(sorted(MODALITIES))}") from None


def modality_names() -> tuple[str, ...]:
    load_all()
    return tuple(MODALITIES)


def encoder_input_dims(encoder: str) -> set[int]:
    """Dimensions of one unbatched input of ``encoder``, over every modality that feeds it."""
    load_all()
    return {m.sample_dims for m in MODALITIES.values() if m.encoder == encoder}
