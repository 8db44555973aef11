"""Training stage: the Trainer loop, its step, and the callbacks (early stopping, lr
scheduling, checkpoints, TensorBoard, transfer unfreezing)."""

from torchprac.train.callbacks import Callback, MonitorCallback
from torchprac.train.checkpoint import CheckpointCallback, load_checkpoint, save_atomic
from torchprac.train.early_stopping import EarlyStopping
from torchprac.train.lr_scheduler import LRSchedulerCallback
from torchprac.train.step import Optimization, Precision
from torchprac.train.tensorboard import TBLogger, TensorBoardCallback
from torchprac.train.trainer import Diverged, FitResult, Loop, Trainer, evaluate, steps_per_epoch

__all__ = [
    "Callback",
    "MonitorCallback",
    "CheckpointCallback",
    "EarlyStopping",
    "LRSchedulerCallback",
    "TBLogger",
    "TensorBoardCallback",
    "Optimization",
    "Precision",
    "Trainer",
    "Loop",
    "FitResult",
    "Diverged",
    "evaluate",
    "steps_per_epoch",
    "load_checkpoint",
    "save_atomic",
]
