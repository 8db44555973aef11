"""The floor under a sweep's overhead: a Hydra app on torchprac's own config tree whose jobs do
only what any torch + Hydra + scikit-learn trainer of the digits data must do, and no training:

    per process   interpreter, Hydra, `import torch`, torch.optim's first step (it imports
                  torch._dynamo), scikit-learn's digits and its stratified split
    per job       Hydra composing and launching the job (its run dir, .hydra/*.yaml, log file)

bench_sweep.py runs it as `python bench/sweep_floor.py -m trainer.seed=0,...` with the same
launcher as the real sweep: no implementation of the real jobs can take less wall time than
this plus their fit times.
"""

import hydra
from omegaconf import DictConfig

_warm: list[bool] = []


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    if not _warm:  # once per process, as a basic sweep pays it once
        import torch
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        w = torch.zeros(2, requires_grad=True)
        opt = torch.optim.SGD([w], lr=0.1)
        w.sum().backward()
        opt.step()  # torch.optim imports torch._dynamo here
        d = load_digits()
        train_test_split(d.target, test_size=0.2, random_state=int(cfg.trainer.seed), stratify=d.target)
        _warm.append(True)
    return 0.0


if __name__ == "__main__":
    main()
