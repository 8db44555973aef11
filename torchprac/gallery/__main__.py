"""Draw a gallery entry from its finished sweep:

    python -m torchprac.gallery nonlinearity                  # the newest multirun/gallery/nonlinearity/*
    python -m torchprac.gallery nonlinearity multirun/gallery/nonlinearity/2026-11-22_10-00-00
    python -m torchprac.gallery paths                         # computed here: no sweep needed

writes docs/img/gallery_<entry>.png (--out to change it), <sweep>/gallery_<entry>.json with the
numbers, and prints them."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from torchprac.gallery import ENTRIES, command, entry
    from torchprac.gallery.sweep import latest

    p = argparse.ArgumentParser(prog="python -m torchprac.gallery", description=__doc__.split("\n\n")[0])
    p.add_argument("entry", choices=ENTRIES)
    p.add_argument("sweep_dir", nargs="?", type=Path, help="the sweep's root (default: the newest of the entry)")
    p.add_argument("--out", type=Path, help="the PNG to write (default: docs/img/gallery_<entry>.png)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    mod = entry(args.entry)
    root = args.sweep_dir
    if mod.PRESET is not None:
        root = root or latest(args.entry)
        if root is None or not root.is_dir():
            print(
                f"error: no sweep of {args.entry} found (multirun/gallery/{args.entry}/ is empty). "
                f"Run it first: {command(args.entry)}",
                file=sys.stderr,
            )
            return 2
    from torchprac.viz.figures import save_png

    numbers = mod.measure(root)
    out = args.out or Path("docs/img") / f"gallery_{args.entry}.png"
    save_png(mod.draw(root, numbers), out)
    if root is not None:
        (Path(root) / f"gallery_{args.entry}.json").write_text(json.dumps(numbers, indent=1, default=str) + "\n")
    print("\n".join(mod.summary(numbers)))
    print(f"figure: {out}" + (f"  (sweep {root})" if root is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
