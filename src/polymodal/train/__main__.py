"""``torchrun --nproc_per_node N -m polymodal.train CONFIG.yaml [key=value …]`` — the same run as
``polymodal train``, one process per GPU."""

import json
import sys

from .config import load_config
from .trainer import run


def main(argv: list[str]) -> None:
    path = argv[0] if argv and not "=" in argv[0] else None
    overrides = [a for a in argv if "=" in a]
    cfg = load_config(path, overrides)
    result = run(cfg)
    if result:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
