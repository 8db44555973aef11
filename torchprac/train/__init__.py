"""Training stage: the Trainer loop, early stopping, checkpoints and TensorBoard logging."""

from torchprac.train.callbacks import Callback
from torchprac.train.checkpoint import CheckpointCallback, load_checkpoint, save_atomic
from torchprac.train.early_stopping import EarlyStopping
from torchprac.train.tensorboard import TBLogger
from torchprac.train.trainer import Diverged, FitResult, Trainer, evaluate

__all__ = [
    "Callback",
    "CheckpointCallback",
    "EarlyStopping",
    "TBLogger",
    "Trainer",
    "FitResult",
    "Diverged",
    "evaluate",
    "load_checkpoint",
    "save_atomic",
]
