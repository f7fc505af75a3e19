"""Where a run's examples come from: ``data.kind`` names a registered :class:`Source`, which turns
the ``data.*`` settings into the examples an objective kind consumes. A kind declares the kind of
examples it needs (``TrainKind.examples``: caption pairs, region questions, document pages, …) and
never learns which source gave them, so a new format is one file here (or in a plugin) that
registers itself:

    register_source(Source("vqa_v2", "region_questions", load=read_vqa_v2_source,
                           reads=("questions", "annotations", "images")))

Sources of other packages (the synthetic world's, a user's own) join through the
``polymodal.sources`` entry-point group: each entry names a module that registers on import.

Every ``data.*`` setting a run gives must be read by its source or by its kind: a setting nobody
reads is an error that names it (``data.kind=world data.path=questions.json`` would otherwise
train on world scenes without a word).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable

from ...plugins import import_all
from ..config import ConfigError, DataConfig

ENTRY_POINTS = "polymodal.sources"
# Read by every source and kind alike: the selector itself.
ALWAYS_READ = frozenset({"kind"})


@dataclass(frozen=True)
class Source:
    """``name`` (its ``data.kind``) gives ``examples`` (the kind of examples, e.g. "caption_pairs")
    through ``load(kind, split)`` → examples (``kind``: the :class:`~polymodal.train.kinds.TrainKind`
    asking, whose ``cfg``, ``out``, ``rank`` and helpers the source may use; ``split``: "train" or
    "val"; a source without validation data returns None for "val"). ``reads``: the ``data.*``
    settings it reads. ``evaluate(kind, model)``, if given, replaces the kind's evaluation (what only
    this source can measure, e.g. the world's held-out zero-shot)."""

    name: str
    examples: str
    load: Callable[[Any, str], Any]
    reads: tuple[str, ...] = ()
    evaluate: Callable | None = None
    streams: bool = False  # its training examples stream through readers of their own (no loader workers)
    about: str = ""


_SOURCES: dict[tuple[str, str], Source] = {}
_loaded = False


def register_source(source: Source) -> Source:
    key = (source.name, source.examples)
    if key in _SOURCES and _SOURCES[key] != source:
        raise ValueError(f"data.kind {source.name!r} giving {source.examples} is registered twice")
    unknown = set(source.reads) - {f.name for f in dataclasses.fields(DataConfig)}
    if unknown:
        raise ValueError(f"source {source.name!r} reads unknown data setting(s) {sorted(unknown)}")
    _SOURCES[key] = source
    return source


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    import_all(__package__)  # every module of this package registers the sources it defines
    for entry in entry_points(group=ENTRY_POINTS):
        try:
            entry.load()
        except Exception as e:  # noqa: BLE001 — a broken plugin is named, whatever it raised
            raise ImportError(f"the data sources of {entry.name} ({entry.value}, entry point {ENTRY_POINTS}) "
                              f"failed to load: {e}") from e
    _loaded = True


def all_sources() -> list[Source]:
    """Every registered source, by ``data.kind`` then examples."""
    _load_builtin()
    return [_SOURCES[key] for key in sorted(_SOURCES)]


def source_names() -> tuple[str, ...]:
    """Every registered ``data.kind``."""
    _load_builtin()
    return tuple(sorted({name for name, _ in _SOURCES}))


def sources_giving(examples: str) -> tuple[str, ...]:
    _load_builtin()
    return tuple(sorted(name for name, ex in _SOURCES if ex == examples))


def find_source(name: str, examples: str, kind_name: str) -> Source:
    """The source ``data.kind`` = ``name`` that gives ``examples`` for objective kind ``kind_name``;
    the error lists the sources that can feed it."""
    _load_builtin()
    source = _SOURCES.get((name, examples))
    if source is not None:
        return source
    able = sources_giving(examples)
    if not able:
        raise ConfigError(f"objective.kind {kind_name} needs {examples.replace('_', ' ')}, which no registered "
                          f"source gives")
    known = source_names()
    what = (f"data.kind {name!r} gives {', '.join(sorted(ex for n, ex in _SOURCES if n == name)).replace('_', ' ')}"
            if name in known else f"data.kind {name!r} is not a registered source ({', '.join(known)})")
    raise ConfigError(f"objective.kind {kind_name} needs {examples.replace('_', ' ')}: {what}; "
                      f"sources that give them: {', '.join(able)}")


def given_settings(data: DataConfig) -> set[str]:
    """The ``data.*`` settings a run sets: those whose value is not the default (a saved run's full
    config names every setting, so naming one at its default value says nothing)."""
    defaults = DataConfig()
    return {f.name for f in dataclasses.fields(DataConfig) if getattr(data, f.name) != getattr(defaults, f.name)}


def check_settings(data: DataConfig, source: Source, kind_reads: tuple[str, ...], kind_name: str) -> None:
    """Refuse a ``data.*`` setting that neither the source nor the kind reads, by name."""
    unread = sorted(given_settings(data) - set(source.reads) - set(kind_reads) - ALWAYS_READ)
    if unread:
        names = ", ".join(f"data.{k}" for k in unread)
        raise ConfigError(f"{names}: not read by data.kind {source.name} with objective.kind {kind_name} "
                          f"(it reads {', '.join('data.' + k for k in sorted(set(source.reads) | set(kind_reads)))}); "
                          "leave them out of the config and its overrides")
