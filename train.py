"""Train one configuration (or a sweep with -m). Examples:

python train.py
python train.py optimizer=adam 'reg=[l2]' trainer.epochs=20
python train.py -m optimizer=sgd,adam 'reg=[],[l2]'
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from torchprac.entry import main as run_main

    return run_main(cfg)


if __name__ == "__main__":
    from torchprac.distributed import quiet_rank_overrides
    from torchprac.preflight import check

    # Before Hydra writes anything: bad reg names/keys, an earlier run in the run dir, resume.
    sys.argv[1:] = check(sys.argv[1:], Path(__file__).resolve().parent / "conf")
    sys.argv += quiet_rank_overrides()  # torchrun: ranks > 0 write no log/.hydra of their own
    try:
        main()
    except KeyboardInterrupt:  # before the run started (imports, Hydra): nothing to resume
        print("interrupted", file=sys.stderr)
        sys.exit(130)
