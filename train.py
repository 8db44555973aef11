"""Train one configuration (or a sweep with -m). Examples:

python train.py
python train.py optimizer=adam 'reg=[l2]' trainer.epochs=20
python train.py -m optimizer=sgd,adam 'reg=[],[l2]'
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from torchprac.entry import main as run_main

    return run_main(cfg)


if __name__ == "__main__":
    import sys

    from torchprac.distributed import quiet_rank_overrides

    sys.argv += quiet_rank_overrides()  # torchrun: ranks > 0 write no log/.hydra of their own
    main()
