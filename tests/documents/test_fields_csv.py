"""The fields CSV that `doc extract` writes over a folder: what a spreadsheet would run stays text."""

import csv

from polymodal.documents.fields_csv import FieldsCSV, cell


def test_cells_a_spreadsheet_would_run_as_formulas_are_written_as_text(tmp_path):
    assert cell('=HYPERLINK("http://x","total")') == "'" + '=HYPERLINK("http://x","total")'
    assert [cell(v) for v in ("+1", "-2", "@SUM(A1)", "\tx", "Total", "9.50")] == ["'+1", "'-2", "'@SUM(A1)", "'\tx", "Total", "9.50"]
    assert cell([1.0, 2.5, 30.0, 40.0]) == "1 2.5 30 40"
    result = {"pages": [{"page": 2, "fields": [{"key": "Total:", "value": "=1+1", "confidence": 0.5,
                                                "key_box": [1, 2, 3, 4], "value_box": [5, 6, 7, 8]}]}]}
    with FieldsCSV(tmp_path / "fields.csv") as out:
        out.add("scans/a.pdf", result)
    assert out.rows == 1
    raw = (tmp_path / "fields.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM that tells Excel it is UTF-8
    with open(tmp_path / "fields.csv", encoding="utf-8-sig", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row == {"file": "scans/a.pdf", "page": "2", "key": "Total:", "value": "'=1+1", "confidence": "0.5000",
                   "key_box": "1 2 3 4", "value_box": "5 6 7 8"}
