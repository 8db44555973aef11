"""`torchprac` console script: the same as `python train.py` (reads the checkout's conf/)."""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

CONF_DIR = os.environ.get("TORCHPRAC_CONF", str(Path(__file__).resolve().parents[1] / "conf"))


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    from torchprac.entry import main as run_main

    return run_main(cfg)


def console() -> None:
    """The `torchprac` script: the same preflight checks as train.py, then Hydra."""
    import sys

    from torchprac.distributed import quiet_rank_overrides
    from torchprac.preflight import check

    sys.argv[1:] = check(sys.argv[1:], Path(CONF_DIR))
    sys.argv += quiet_rank_overrides()
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    console()
