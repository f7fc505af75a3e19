"""The licence a checkpoint folder carries, for ``polymodal info``: a Hugging Face model card's ``license:``
field (README.md front matter), else the first line of a LICENSE / LICENCE / COPYING file."""

from __future__ import annotations

import re
from pathlib import Path

FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt", "COPYING")
MAX_BYTES = 64 << 10  # read no more than this of a card or licence file


def _head(file: Path) -> str:
    with open(file, "rb") as f:
        return f.read(MAX_BYTES).decode("utf-8", errors="replace")


def folder_licence(folder: str | Path) -> str | None:
    """"apache-2.0 (README.md)", "MIT License (LICENSE)", … or None when the folder names none. Only regular
    files inside the folder are read (a link out of it is not followed)."""
    folder = Path(folder)
    card = folder / "README.md"
    if card.is_file() and not card.is_symlink():
        text = _head(card)
        front = re.match(r"---\s*\n(.*?)\n---", text, re.S)
        found = front and re.search(r"^licen[cs]e:\s*['\"]?([^'\"\n]+)", front.group(1), re.M)
        if found:
            return f"{found.group(1).strip()} (README.md)"
    for name in FILES:
        file = folder / name
        if file.is_file() and not file.is_symlink():
            first = next((line.strip() for line in _head(file).splitlines() if line.strip()), "")
            return f"{first[:120]} ({name})" if first else f"see {name}"
    return None
