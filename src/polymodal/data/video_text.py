"""Video–text annotations in the layouts people have:

* a CSV or JSONL of ``video, start, end, text`` rows (HowTo100M / YouCook2 captions: one timed
  sentence per row, times in seconds);
* MSR-VTT's JSON (``videos`` with ``video_id`` [+ ``split``], ``sentences`` with ``video_id`` and
  ``caption``; whole videos, no times).

Every bad row is reported (file, row, why) and skipped; the rest load.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .records import jsonl_records

MAX_FILE_BYTES = 512 * 2**20


class VideoTextFormatError(ValueError):
    """The file as a whole cannot be read (not CSV/JSONL/JSON, wrong top-level shape); names the file."""


@dataclass(frozen=True)
class TimedText:
    video: str
    start: float | None  # seconds; None: the whole video
    end: float | None
    text: str


def _check_size(path: Path) -> None:
    if not path.is_file():
        raise VideoTextFormatError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise VideoTextFormatError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB")


def _row(record: dict, where: str) -> TimedText:
    missing = [k for k in ("video", "start", "end", "text") if record.get(k) in (None, "")]
    if missing:
        raise ValueError(f"{where}: missing {missing}")
    try:
        start, end = float(record["start"]), float(record["end"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: start/end are not numbers ({record['start']!r}, {record['end']!r})") from None
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
        raise ValueError(f"{where}: needs 0 ≤ start < end, got {start}–{end}")
    return TimedText(str(record["video"]), start, end, str(record["text"]))


def read_timed_texts(path: str | Path) -> tuple[list[TimedText], list[str]]:
    """Rows of a ``.csv`` / ``.tsv`` (header ``video,start,end,text``) or ``.jsonl`` → (rows, problems:
    one line per bad row, naming file and row)."""
    path = Path(path)
    _check_size(path)
    rows, problems = [], []
    if path.suffix == ".jsonl":
        for where, record in jsonl_records(path, problems, MAX_FILE_BYTES):
            try:
                rows.append(_row(record, where))
            except ValueError as e:
                problems.append(str(e))
        return rows, problems
    if path.suffix not in (".csv", ".tsv"):
        raise VideoTextFormatError(f"{path}: expected .csv, .tsv or .jsonl")
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ",")
        if not reader.fieldnames or not {"video", "start", "end", "text"} <= set(reader.fieldnames):
            raise VideoTextFormatError(f"{path}: the header must name video, start, end, text; got {reader.fieldnames}")
        for n, record in enumerate(reader, 2):  # row 1 is the header
            try:
                rows.append(_row(record, f"{path}:{n}"))
            except ValueError as e:
                problems.append(str(e))
    return rows, problems


def read_msrvtt(path: str | Path, split: str | None = None) -> tuple[list[TimedText], list[str]]:
    """MSR-VTT's annotation JSON → one whole-video row per caption (of ``split`` when given, for the
    videos that carry one), and the problems (captions of unknown videos, empty captions)."""
    path = Path(path)
    _check_size(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as e:
        raise VideoTextFormatError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("videos"), list) or not isinstance(data.get("sentences"), list):
        raise VideoTextFormatError(f"{path}: expected an object with 'videos' and 'sentences' lists (MSR-VTT)")
    videos = {v["video_id"]: v for v in data["videos"] if isinstance(v, dict) and "video_id" in v}
    rows, problems = [], []
    for n, s in enumerate(data["sentences"]):
        if not isinstance(s, dict) or not s.get("caption") or "video_id" not in s:
            problems.append(f"{path}: sentence {n} lacks video_id or caption")
            continue
        video = videos.get(s["video_id"])
        if video is None:
            problems.append(f"{path}: sentence {n} is about unknown video {s['video_id']!r}")
            continue
        if split is None or video.get("split") == split:
            rows.append(TimedText(str(s["video_id"]), None, None, str(s["caption"])))
    return rows, problems
