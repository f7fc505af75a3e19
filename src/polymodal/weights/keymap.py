"""Re-keying foreign state dicts: ordered regex renames, Q/K/V fusion, per-key reshapes."""

from __future__ import annotations

import re
from typing import Callable

import torch

Rule = tuple[str, str]


def rename(sd: dict[str, torch.Tensor], rules: list[Rule]) -> dict[str, torch.Tensor]:
    """Apply the first matching ``(pattern, replacement)`` to each key (full match); keys no rule
    matches are kept unchanged so that the strict load reports them as unexpected."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out = {}
    for key, value in sd.items():
        for pattern, repl in compiled:
            if pattern.fullmatch(key):
                key = pattern.sub(repl, key)
                break
        out[key] = value
    return out


def submodule_rules(names: dict[str, str]) -> list[Rule]:
    """Rules renaming a block's submodules wherever they sit: ``{"ln_1": "norm1"}`` maps
    ``PREFIX.ln_1.weight|bias`` to ``PREFIX.norm1.weight|bias``."""
    return [(rf"(.*)\.{re.escape(src)}\.(weight|bias)", rf"\1.{dst}.\2") for src, dst in names.items()]


def fuse_qkv(sd: dict[str, torch.Tensor], pattern: str, names: tuple[str, str, str], target: str) -> dict:
    """Concatenate separate q/k/v projections into one fused ``qkv`` (in ``names`` order).

    ``pattern`` has three groups: the block prefix, one of ``names``, and the parameter name
    (e.g. ``r"(.*)\\.self_attn\\.(q|k|v)_proj\\.(weight|bias)"``); ``target`` is a format string
    with ``{prefix}`` and ``{param}``. A group missing one of its parts keeps its original keys,
    so the strict load reports them.
    """
    regex = re.compile(pattern)
    groups: dict[tuple[str, str], dict[str, tuple[str, torch.Tensor]]] = {}
    out = {}
    for key, value in sd.items():
        m = regex.fullmatch(key)
        if m is None:
            out[key] = value
        else:
            prefix, which, param = m.groups()
            groups.setdefault((prefix, param), {})[which] = (key, value)
    for (prefix, param), parts in groups.items():
        if all(n in parts for n in names):
            out[target.format(prefix=prefix, param=param)] = torch.cat([parts[n][1] for n in names], dim=0)
        else:
            out.update(dict(parts.values()))
    return out


def transform(sd: dict[str, torch.Tensor], fns: dict[str, Callable[[torch.Tensor], torch.Tensor]]) -> dict:
    """Apply ``fns[pattern](tensor)`` to every key that fully matches ``pattern``."""
    compiled = [(re.compile(p), f) for p, f in fns.items()]
    out = {}
    for key, value in sd.items():
        for pattern, fn in compiled:
            if pattern.fullmatch(key):
                value = fn(value)
                break
        out[key] = value
    return out


def drop(sd: dict[str, torch.Tensor], patterns: list[str]) -> dict:
    """Remove keys that are buffers or metadata, not weights (e.g. HF ``position_ids``)."""
    compiled = [re.compile(p) for p in patterns]
    return {k: v for k, v in sd.items() if not any(p.fullmatch(k) for p in compiled)}


def count_indexed(keys, pattern: str) -> int:
    """How many distinct integer indices ``pattern`` (one ``(\\d+)`` group) captures across ``keys``."""
    regex = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := regex.fullmatch(k))})


def _groups(pattern: str) -> list[str]:
    """The top-level capture groups of a simple pattern (no nesting), in order: "(\\d+)", "(weight|bias)"."""
    groups, depth, start = [], 0, 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "(":
            if depth == 0:
                start = i
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                groups.append(pattern[start:i + 1])
        i += 1
    return groups


def invert_rules(rules: list[Rule]) -> list[Rule]:
    """The rules that undo ``rules`` (ours → theirs from theirs → ours): each ``(pattern,
    replacement)`` whose replacement is literal text and ``\\N`` references becomes ``(replacement as
    a pattern, pattern as a replacement)``, the Nth group keeping its sub-pattern. Exporting with the
    inverse of the import table keeps one table per layout."""
    out = []
    for pattern, repl in rules:
        groups = _groups(pattern)
        parts = re.split(r"\\(\d)", repl)  # literal, group number, literal, ...
        inverse_pattern = "".join(re.escape(p) if k % 2 == 0 else groups[int(p) - 1] for k, p in enumerate(parts))
        order = [int(p) for p in parts[1::2]]
        if sorted(order) != list(range(1, len(groups) + 1)):
            raise ValueError(f"rule {pattern!r} → {repl!r} does not use each group once: it cannot be inverted")
        inverse_repl, k, i = "", 0, 0
        while i < len(pattern):  # the pattern's literal text, its groups as references in the new order
            if pattern[i] == "\\" and i + 1 < len(pattern):
                inverse_repl += pattern[i + 1]
                i += 2
            elif pattern[i] == "(":
                inverse_repl += f"\\{order.index(k + 1) + 1}"
                i += len(groups[k])
                k += 1
            else:
                inverse_repl += pattern[i]
                i += 1
        out.append((inverse_pattern, inverse_repl))
    return out
