"""Rebuild a sweep's summary.md/csv, report.html and HParams experiment summary from its job
dirs, for a finished or an interrupted sweep:

    python -m torchprac.report multirun/2026-11-21/10-00-00
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m torchprac.report", description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_dir", type=Path, help="the sweep's root (hydra.sweep.dir), holding one folder per job")
    args = p.parse_args(argv)
    root: Path = args.sweep_dir
    if not root.is_dir():
        print(f"error: {root} is not a folder (give the sweep's root, e.g. multirun/<date>/<time>)", file=sys.stderr)
        return 2
    from torchprac.report.html import rebuild
    from torchprac.report.sweep_summary import _job_dirs

    if not _job_dirs(root):
        print(f"error: no job under {root} (no .hydra/overrides.yaml or metrics.json below it)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return 0 if rebuild(root) is not None else 1


if __name__ == "__main__":
    sys.exit(main())
