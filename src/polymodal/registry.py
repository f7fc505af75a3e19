"""Model families, their named presets and their configs register themselves here, where they
are defined (as timm's ``@register_model``); :func:`build` builds any of them from its config
(:func:`polymodal.create` also loads weights: :mod:`polymodal.factory`).

A family file (``models/<family>.py``) declares, in one place::

    @dataclass
    class ViTConfig: ...

    class VisionTransformer(nn.Module): ...

    register_family("vit", ViTConfig, VisionTransformer, example_inputs=_example_inputs)

    @register_preset("vit-b-16")
    def _vit_b_16() -> ViTConfig: ...

Nothing here names a family: every module in :mod:`polymodal.models` is imported on first use,
so a new family is a new file. Configs (de)serialise generically: nested config dataclasses are
written with their registered ``kind`` and read back by it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from .plugins import import_all


@dataclass(frozen=True)
class Family:
    """A model family: its config class, how to build a model from a config, small inputs for a
    forward pass (``model(**example_inputs(config))``) and, for families with an embedding space,
    the official processing of files for a config (a :class:`~polymodal.modalities.processor.Processor`)
    and ``embed_examples(config)`` → ``{modality: (args of model.embed(modality, *args), longest
    sequence or None)}``: what an export traces each tower with (dim 0 of every arg is the batch;
    with a longest sequence, dim 1 is a sequence of up to that length)."""

    name: str
    config_class: type
    build: Callable[[Any], nn.Module]
    example_inputs: Callable[[Any], dict] | None = None
    processor: Callable[[Any], Any] | None = None
    embed_examples: Callable[[Any], dict] | None = None


FAMILIES: dict[str, Family] = {}
_FAMILY_BY_CONFIG: dict[type, Family] = {}
_CONFIG_KINDS: dict[str, type] = {}  # every registered config dataclass, family or nested part
_KIND_OF: dict[type, str] = {}
PRESETS: dict[str, Callable[[], Any]] = {}


def register_config(kind: str) -> Callable[[type], type]:
    """Class decorator: make a config dataclass (de)serialisable by name, e.g. a tower config nested
    inside a family's config."""

    def wrap(cls: type) -> type:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not a dataclass")
        if _CONFIG_KINDS.get(kind, cls) is not cls:
            raise ValueError(f"config kind {kind!r} is already registered by {_CONFIG_KINDS[kind].__name__}")
        _CONFIG_KINDS[kind], _KIND_OF[cls] = cls, kind
        return cls

    return wrap


def register_family(name: str, config_class: type, build: Callable[[Any], nn.Module], *,
                    example_inputs: Callable[[Any], dict] | None = None,
                    processor: Callable[[Any], Any] | None = None,
                    embed_examples: Callable[[Any], dict] | None = None) -> Family:
    """Register a family; its config class becomes (de)serialisable under ``name``."""
    if name in FAMILIES and FAMILIES[name].config_class is not config_class:
        raise ValueError(f"family {name!r} is already registered")
    register_config(name)(config_class)
    family = FAMILIES[name] = _FAMILY_BY_CONFIG[config_class] = Family(name, config_class, build, example_inputs, processor,
                                                                                embed_examples)
    return family


def register_preset(name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Decorator on a zero-argument function returning a fresh config: the preset ``name``."""

    def wrap(fn: Callable[[], Any]) -> Callable[[], Any]:
        if name in PRESETS:
            raise ValueError(f"preset {name!r} is already registered")
        PRESETS[name] = fn
        return fn

    return wrap


def load_all() -> None:
    """Import every module of :mod:`polymodal.models` (each registers its family and presets)."""
    import_all("polymodal.models")


def preset(name: str):
    """The config of a named preset (a fresh copy)."""
    load_all()
    try:
        return PRESETS[name]()
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None


def family(config_or_name) -> Family:
    """The :class:`Family` of a config object (or of a family name)."""
    load_all()
    if isinstance(config_or_name, str):
        try:
            return FAMILIES[config_or_name]
        except KeyError:
            raise KeyError(f"unknown family {config_or_name!r}; known: {', '.join(sorted(FAMILIES))}") from None
    try:
        return _FAMILY_BY_CONFIG[type(config_or_name)]
    except KeyError:
        raise TypeError(f"not a model config: {type(config_or_name).__name__}") from None


def family_of(config) -> str:
    return family(config).name


def build(config) -> nn.Module:
    """A randomly initialised model for ``config`` (any registered family's config)."""
    return family(config).build(config)


def example_inputs(config) -> dict:
    """Small keyword inputs for ``build(config)(**inputs)`` (batch 2)."""
    fam = family(config)
    if fam.example_inputs is None:
        raise NotImplementedError(f"family {fam.name!r} declares no example_inputs")
    return fam.example_inputs(config)


def embed_examples(config) -> dict:
    """Example inputs per embedding tower (see :class:`Family`); a family without an embedding space
    raises naming itself."""
    fam = family(config)
    if fam.embed_examples is None:
        raise NotImplementedError(f"family {fam.name!r} has no embedding towers to export")
    return fam.embed_examples(config)


# ----------------------------------------------------------------------------- (de)serialisation

def config_to_dict(config) -> dict:
    """``{"family": name, "config": {...}}`` with nested configs tagged by their ``kind``."""
    return {"family": family_of(config), "config": dataclass_to_dict(config)}


def dataclass_to_dict(config) -> dict:
    """A config dataclass's fields as JSON-able values (nested registered configs tagged by ``kind``)."""
    return {f.name: _value_to_json(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _value_to_json(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value) not in _KIND_OF:
            raise TypeError(f"nested config {type(value).__name__} is not registered (use @register_config)")
        return {"kind": _KIND_OF[type(value)], **dataclass_to_dict(value)}
    if isinstance(value, (tuple, list)):
        return [_value_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _value_to_json(v) for k, v in value.items()}
    return value


def config_from_dict(d: dict):
    """Inverse of :func:`config_to_dict`; unknown keys are an error naming the key."""
    load_all()
    name = d.get("family")
    if name not in FAMILIES:
        raise ValueError(f"config has unknown family {name!r}; known: {sorted(FAMILIES)}")
    return dataclass_from_dict(FAMILIES[name].config_class, d["config"], name)


def dataclass_from_dict(cls: type, values: dict, where: str):
    """Inverse of :func:`dataclass_to_dict`; ``where`` names the config in errors."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    renamed = getattr(cls, "RENAMED_KEYS", {})  # old key → today's, from configs older versions wrote
    values = {renamed.get(k, k): v for k, v in values.items()}
    ignored = set(getattr(cls, "LEGACY_KEYS", ()))  # keys older versions wrote, now derived
    unknown = set(values) - fields - ignored
    if unknown:
        raise ValueError(f"unknown {where} config keys: {sorted(unknown)}")
    kwargs = {k: _value_from_json(hints[k], v, f"{where}.{k}") for k, v in values.items() if k in fields}
    return cls(**kwargs)


def _value_from_json(hint, value, where: str):
    if value is None:
        return None
    candidates = [t for t in _union_members(hint) if dataclasses.is_dataclass(t)]
    if isinstance(value, dict) and (candidates or "kind" in value):
        value = dict(value)
        kind = value.pop("kind", None)
        if kind is not None:
            if kind not in _CONFIG_KINDS:
                raise ValueError(f"{where}: unknown config kind {kind!r}")
            cls = _CONFIG_KINDS[kind]
        else:  # written before configs were tagged: the one candidate whose fields hold every key
            fits = [t for t in candidates if set(value) <= {f.name for f in dataclasses.fields(t)}]
            if len(fits) != 1:
                raise ValueError(f"{where}: cannot tell which of {[t.__name__ for t in candidates]} this config is")
            cls = fits[0]
        return dataclass_from_dict(cls, value, where)
    origin = typing.get_origin(hint)
    if isinstance(value, list) and (origin is tuple or tuple in _union_members(hint)):
        return tuple(value)
    return _checked_scalar(hint, value, where)


# What a size field of any architecture may hold, by the words in its name (first match): a config file
# from outside must not make a model of 10⁶ layers or 4·10⁶-wide MLPs before its weights are checked.
SIZE_RANGES = (("heads", 1, 1024), ("layers", 0, 1024), ("depth", 0, 1024), ("blocks", 0, 1024),
               ("vocab", 1, 2_000_000), ("positions", 1, 1_000_000), ("context", 1, 1_000_000),
               ("size", 1, 16_384), ("patch", 1, 16_384), ("width", 1, 65_536), ("hidden", 1, 262_144),
               ("dim", 0, 262_144), ("channels", 1, 65_536), ("classes", 0, 1_000_000), ("", 0, 100_000_000))


def _checked_scalar(hint, value, where: str):
    """A number or string of a config file checked against its field's type, and a whole number against
    :data:`SIZE_RANGES`; ValueError naming the key otherwise."""
    members = _union_members(hint)
    if isinstance(value, bool):
        if bool in members or typing.Any in members:
            return value
        raise ValueError(f"{where}: expected {_type_name(members)}, got {value!r}")
    if isinstance(value, int) and int in members:
        name = where.rsplit(".", 1)[-1].lower()
        low, high = next((lo, hi) for word, lo, hi in SIZE_RANGES if word in name)
        if not low <= value <= high:
            raise ValueError(f"{where}: {value} is outside {low}..{high}")
        return value
    if isinstance(value, (int, float)) and float in members:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{where}: {value!r} is not a finite number")
        return float(value)
    if isinstance(value, str) and (str in members or any(isinstance(m, type) and issubclass(m, str) for m in members)):
        return value
    if isinstance(value, (int, float, str)) and not ({int, float, str} & set(members)) and \
            all(isinstance(m, type) for m in members) and not (tuple in members or list in members or dict in members):
        raise ValueError(f"{where}: expected {_type_name(members)}, got {value!r}")
    if isinstance(value, (int, float, str)) and ({int, float, str} & set(members)) and type(value) not in members \
            and not (type(value) is int and float in members):
        raise ValueError(f"{where}: expected {_type_name(members)}, got {type(value).__name__} {value!r}")
    return value


def check_ranges(config, where: str = "config") -> None:
    """Every whole-number field of ``config`` (a config dataclass, nested ones included) inside
    :data:`SIZE_RANGES` — for configs built from someone else's files (a HF ``config.json``) as much as
    ours; ValueError naming the key otherwise."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, f"{where}.{f.name}")
        elif isinstance(value, int) and not isinstance(value, bool):
            _checked_scalar(int, value, f"{where}.{f.name}")


def _type_name(members: tuple) -> str:
    return " or ".join(getattr(m, "__name__", str(m)) for m in members if m is not type(None))


def _union_members(hint) -> tuple:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(typing.get_origin(a) or a for a in typing.get_args(hint))
    return (typing.get_origin(hint) or hint,)
