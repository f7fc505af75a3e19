"""Mean ± standard deviation of runs' eval.json metrics, runs grouped by a name prefix.

    python scripts/runs_table.py runs/vqa-claims --group pretrained,scratch --metrics val_accuracy,...
    python scripts/runs_table.py runs/region-tasks --exact --group consistency,consistency-text --metrics ...
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--group", required=True, help="comma-separated run-name prefixes, one column each")
    parser.add_argument("--metrics", required=True, help="comma-separated eval.json keys, one row each")
    parser.add_argument("--exact", action="store_true", help="each group is one run folder, not a prefix")
    args = parser.parse_args()
    groups = args.group.split(",")
    runs = {g: [json.loads((run / "eval.json").read_text())
                for run in ([args.folder / g] if args.exact else sorted(args.folder.glob(f"{g}-*")))
                if (run / "eval.json").is_file()] for g in groups}
    print("| metric | " + " | ".join(f"{g} (n={len(runs[g])})" for g in groups) + " |")
    print("|---|" + "---|" * len(groups))
    for metric in args.metrics.split(","):
        cells = []
        for g in groups:
            values = [r[metric] for r in runs[g] if metric in r]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}" if values else "—")
        print(f"| {metric} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
