"""Key–value fields of many documents as one CSV a spreadsheet opens: UTF-8 with a byte-order mark
(Excel reads the encoding from it), one row per field, boxes as ``x0 y0 x1 y1`` pixels.

The keys and values come from the documents — outside input — so a cell a spreadsheet would run as a
formula (starting ``=``, ``+``, ``-``, ``@``, tab or carriage return) is written with a leading
apostrophe, as OWASP's CSV-injection advice says.
"""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ("file", "page", "key", "value", "confidence", "key_box", "value_box")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str:
    """A value as a CSV cell no spreadsheet evaluates."""
    text = " ".join(f"{v:g}" for v in value) if isinstance(value, (list, tuple)) else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


class FieldsCSV:
    """Append the fields of each document as it is read (``with FieldsCSV(path) as out: out.add(...)``)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __enter__(self) -> "FieldsCSV":
        self._file = open(self.path, "w", newline="", encoding="utf-8-sig")
        self._writer = csv.writer(self._file)
        self._writer.writerow(COLUMNS)
        self.rows = 0
        return self

    def add(self, file: str, result: dict) -> None:
        """The ``fields`` of every page of one document's extraction ``result`` (``doc extract``'s JSON)."""
        for page in result["pages"]:
            for field in page["fields"]:
                self._writer.writerow([cell(file), page["page"], cell(field["key"]), cell(field["value"]),
                                       f"{field['confidence']:.4f}", cell(field["key_box"]), cell(field["value_box"])])
                self.rows += 1
        self._file.flush()  # a long run's rows so far are on disk if it is stopped

    def __exit__(self, *exc) -> None:
        self._file.close()
