"""A training CSV from outside: rows that are not UTF-8, fields over csv's limit, lines of megabytes,
a FIFO and paths out of the table's folder each go to skipped.txt with their line; training goes on."""

import os
from pathlib import Path

from bounded import run_bounded
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def test_bad_csv_rows_are_skipped_with_their_line_and_training_goes_on(tmp_path, minilm_dir):
    data = tmp_path / "data"
    data.mkdir()
    for k in range(4):
        Image.new("RGB", (40, 40), (50 * k, 20, 200)).save(data / f"g{k}.png")
    os.mkfifo(data / "pipe.png")
    Image.new("RGB", (40, 40)).save(tmp_path / "outside.png")
    lines = [b"filepath,caption", *[f"g{k}.png,a blue picture {k}".encode() for k in range(4)],
             b"g0.png,caf\xe9 au lait",                      # line 6: Latin-1, not UTF-8
             b"g1.png," + b"x" * 200_000,                    # line 7: a field over csv's 128 KB limit
             b"g2.png," + b"y" * 3_000_000,                  # line 8: a 3 MB line
             b"pipe.png,a pipe",                             # line 9: a FIFO
             b"../outside.png,one folder up",                # line 10
             b"/dev/zero,endless zeros",                     # line 11
             b"/proc/self/mem,memory"]                       # line 12
    (data / "pairs.csv").write_bytes(b"\n".join(lines) + b"\n")
    ran = run_bounded("train", "configs/clip-csv.yaml", f"data.path={data / 'pairs.csv'}", "model.preset=clip-minilm-tiny",
                      "model.text_weights=null", f"data.tokenizer={minilm_dir}", "train.steps=1", "train.batch_size=4",
                      "train.precision=fp32", f"train.out={tmp_path / 'run'}", cwd=REPO, timeout=90)
    assert ran.returncode == 0, ran.output
    skipped = (tmp_path / "run" / "skipped.txt").read_text().splitlines()
    by_line = {int(s.split(":")[1]): s for s in skipped}
    assert sorted(by_line) == [6, 7, 8, 9, 10, 11, 12], skipped
    assert "not UTF-8" in by_line[6] and "longer than" in by_line[8]
    assert "not a regular file" in by_line[9]
    assert all("lies outside the table's folder" in by_line[n] for n in (10, 11, 12))
