"""TensorBoard writer for one run: scalars, histograms, text and hparams, all in the run's own
event directory (so `tensorboard --logdir outputs` / `multirun` sees one run per folder)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from torchprac.train.callbacks import Callback


class TBLogger:
    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: heavy import

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, logs: dict[str, float], step: int) -> None:
        for k, v in logs.items():
            self.writer.add_scalar(k, v, step)

    def histograms(self, model: nn.Module, step: int) -> None:
        tensors = {}
        for name, p in model.named_parameters():
            tensors[f"weights/{name}"] = p
            if p.grad is not None:
                tensors[f"grads/{name}"] = p.grad
        self.add_histograms(tensors, step)

    @torch.no_grad()
    def add_histograms(self, tensors: dict[str, torch.Tensor], step: int, bins: int = 64) -> None:
        """Histograms binned by torch where the tensors live (uniform bins between min and max),
        with two host reads in all. add_histogram's numpy binning (~600 exponential buckets, on
        a host copy) took ~85 ms for the benchmark MLP's 12 tensors, ~7% of an epoch at batch
        1024 (bench/README.md); this takes ~10 ms. Non-finite tensors are skipped (TensorBoard
        cannot bin them)."""
        flat = {k: t.detach().float().flatten() for k, t in tensors.items() if t.numel()}
        if not flat:
            return
        stats = torch.stack([torch.stack([t.min(), t.max(), t.sum(), t.dot(t)]) for t in flat.values()]).tolist()
        finite = [(k, t, s) for (k, t), s in zip(flat.items(), stats) if all(map(math.isfinite, s))]
        counts = torch.stack([torch.histc(t, bins, s[0], s[1]) for _, t, s in finite]).cpu() if finite else []
        for (tag, t, (lo, hi, total, squares)), c in zip(finite, counts):
            # TensorBoard stores right bucket edges; a leading empty bucket marks the left edge.
            limits = torch.linspace(lo, hi, bins + 1, dtype=torch.float64) if hi > lo else torch.tensor([lo, lo])
            c = torch.cat([c.new_zeros(1), c if hi > lo else c.sum().reshape(1)])
            # Lists, not tensors: the protobuf would read a tensor one .item() per bucket.
            self.writer.add_histogram_raw(tag, lo, hi, t.numel(), total, squares, limits.tolist(), c.tolist(), step)

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


class TensorBoardCallback(Callback):
    """Scalars at every logging step and epoch end; weight/gradient histograms at epoch ends."""

    def __init__(self, logger: TBLogger, histograms: bool = True) -> None:
        self.logger, self.histograms = logger, histograms

    def on_log(self, trainer, logs: dict[str, float]) -> None:
        self.logger.scalars(logs, trainer.global_step)

    def on_epoch_end(self, trainer, logs: dict[str, float]) -> None:
        self.logger.scalars({k: v for k, v in logs.items() if k != "epoch"}, trainer.global_step)
        if self.histograms:
            self.logger.histograms(trainer.model, trainer.global_step)
