"""TensorBoard writer for one run: scalars, histograms, text and hparams, all in the run's own
event directory (so `tensorboard --logdir outputs` / `multirun` sees one run per folder)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class TBLogger:
    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: heavy import

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, logs: dict[str, float], step: int) -> None:
        for k, v in logs.items():
            self.writer.add_scalar(k, v, step)

    def histograms(self, model: nn.Module, step: int) -> None:
        for name, p in model.named_parameters():
            self.writer.add_histogram(f"weights/{name}", p.detach().float().cpu(), step)
            if p.grad is not None:
                self.writer.add_histogram(f"grads/{name}", p.grad.detach().float().cpu(), step)

    def text(self, tag: str, body: str, step: int = 0) -> None:
        self.writer.add_text(tag, body, step)

    def hparams(self, hparams: dict, metrics: dict[str, float]) -> None:
        """SummaryWriter.add_hparams writes into a new timestamped sub-run; we write the same
        three summaries into this run's own event file instead, so the HParams tab lists one
        row per run dir and sweeps compare."""
        from torch.utils.tensorboard.summary import hparams as hp_summary

        exp, ssi, sei = hp_summary(hparams, metrics)
        fw = self.writer._get_file_writer()
        for s in (exp, ssi, sei):
            fw.add_summary(s)
        for k, v in metrics.items():
            self.writer.add_scalar(k, v)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def layer_norms(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().norm() for n, p in model.named_parameters()}
