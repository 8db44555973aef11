"""Use a trained model.

    python train.py mode=predict  model.pretrained=<run dir or .pt> predict.input=<csv | npz | image folder | image>
    python train.py mode=evaluate model.pretrained=<run dir or .pt> data=<a dataset with the same classes>

The model is rebuilt from the checkpoint's own config and weights, and new inputs are read
exactly as its training data was: the normalisation statistics (mu, sigma of the TRAINING
split), the class names, the task and the input shape all come from the checkpoint (key
`data`, data/meta.py), never refitted on the new data. What does not fit — another feature
count or set of columns, another image size, labels the model does not know — is refused with
a clear error instead of a wrong answer.

predict writes predictions.csv into the run dir: id, prediction (class name or value) and,
for classification, one probability column per class. evaluate writes evaluation.json: loss
and metrics of each split of the data (made as training makes them, with the checkpoint's
seed) and of all of it, with the confusion matrices for classification."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from torchprac import registry
from torchprac.data.meta import DataMeta
from torchprac.errors import CheckpointError, ConfigError, DataError, TorchpracError
from torchprac.registry import flag, text

log = logging.getLogger("torchprac")


@dataclass
class PredictSettings:
    input: str | None = None
    header: bool = True
    delimiter: str = ","


registry.register("predict", "default", input=text(optional=True), header=flag(), delimiter=text())(PredictSettings)


@dataclass
class Trained:
    """A trained model ready to use, with what its checkpoint says about its data."""

    model: nn.Module
    meta: DataMeta
    path: Path
    config: dict[str, Any]  # the training run's resolved config

    @property
    def seed(self) -> int | None:
        return (self.config.get("trainer") or {}).get("seed")

    @property
    def resize(self) -> bool:
        """Training resized its images (data.image_size set): new images are resized too."""
        return (self.config.get("data") or {}).get("image_size") is not None


def _architecture(cfg: dict[str, Any], meta: DataMeta) -> nn.Module:
    """The training run's model (model, activation and dropout choices) for the stored shape."""
    from torchprac.reg import Regularizers

    node = {k: v for k, v in (cfg.get("model") or {}).items() if k != "pretrained"}
    spec = registry.build("model", node)
    activation = registry.build("activation", cfg.get("activation") or {"name": "relu"})
    drop = Regularizers.from_config(cfg.get("reg") or {}).dropout
    return spec.make(
        meta.input_shape,
        meta.num_outputs,
        activation=activation,
        keep_probs=drop.keep_probs(len(spec.hidden), "reg.dropout.keep_prob") if drop else None,
        input_keep_prob=drop.input_keep_prob if drop else 1.0,
        alpha_dropout=bool(drop and drop.alpha),
    )


def load_trained(pretrained: str | Path, device: torch.device | str = "cpu") -> Trained:
    """The model of a run dir (its checkpoints/best.pt, else last.pt) or of a checkpoint file."""
    import yaml

    from torchprac.files import load_checkpoint
    from torchprac.nn.transfer import _strip, resolve_checkpoint

    path = resolve_checkpoint(pretrained)
    ckpt = load_checkpoint(path)  # torch.load(weights_only=True)
    meta = DataMeta.from_checkpoint(ckpt, path)
    cfg = yaml.safe_load(ckpt.get("config") or "") or {}
    try:
        registry.load()
        model = _architecture(cfg, meta)
        model.load_state_dict({_strip(k): v for k, v in ckpt["model"].items()})
    except (TorchpracError, RuntimeError, KeyError, ValueError, TypeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(
            f"Checkpoint {path}: the model cannot be rebuilt from the config stored with it ({first})."
        ) from None
    return Trained(model.to(device).eval(), meta, path, cfg)


# -- reading new inputs --------------------------------------------------------------------------
def _csv_inputs(path: Path, meta: DataMeta, s: PredictSettings) -> tuple[list[str], np.ndarray]:
    from torchprac.data.tabular import read_csv, read_table

    n_features = int(np.prod(meta.input_shape))
    if len(meta.input_shape) != 1:
        raise DataError(f"predict.input={str(path)!r}: a CSV holds feature vectors; the model takes {meta.input_shape}")

    names = read_table(path, s.header, s.delimiter)[0]
    if meta.feature_names and s.header:
        missing = [f for f in meta.feature_names if f not in names]
        if missing:
            raise DataError(
                f"predict.input={str(path)!r}: the model was trained on the columns {meta.feature_names}; "
                f"this file lacks {missing} (it has {names})."
            )
        features: list | None = list(meta.feature_names)  # by name, in the training order
    else:
        if len(names) != n_features:
            raise DataError(
                f"predict.input={str(path)!r} has {len(names)} columns; the model takes {n_features} features "
                "(give exactly those columns, in the training order)."
            )
        features = None
    x, _, _ = read_csv(path, None, features, s.header, s.delimiter)
    return [str(i) for i in range(len(x))], x


def _npz_inputs(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z.files and len(z.files) != 1:
                raise DataError(f"predict.input={str(path)!r} needs an array named x; it holds {sorted(z.files)}.")
            x = z["x"] if "x" in z.files else z[z.files[0]]
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"predict.input={str(path)!r} is not a readable .npz file ({type(e).__name__}: {e}).") from None
    return [str(i) for i in range(len(x))], np.asarray(x, dtype=np.float32)


def _image_inputs(path: Path, trained: Trained) -> tuple[list[str], torch.Tensor]:
    from torchprac.data.images import IMG_EXTENSIONS, image_files, load_image

    shape = trained.meta.input_shape
    if len(shape) != 3:
        raise DataError(
            f"predict.input={str(path)!r} holds images, but the model takes inputs of shape {shape} (not images)."
        )
    files = [path] if path.is_file() else image_files(path)
    if not files:
        raise DataError(f"predict.input={str(path)!r}: no images ({', '.join(IMG_EXTENSIONS)}) in that folder.")
    size = tuple(shape[1:]) if trained.resize else None
    images = []
    for f in files:
        t = load_image(f, shape[0], size)
        if tuple(t.shape) != tuple(shape):
            raise DataError(
                f"{f} is {t.shape[2]}x{t.shape[1]} pixels; the model was trained on {shape[2]}x{shape[1]} images "
                "(its run did not resize: train with data.image_size=N to accept other sizes)."
            )
        images.append(t)
    ids = [f.name if path.is_file() else str(f.relative_to(path)) for f in files]
    return ids, torch.stack(images)


def read_inputs(trained: Trained, s: PredictSettings) -> tuple[list[str], torch.Tensor]:
    """(ids, raw inputs (N, *input_shape) on the CPU) from predict.input."""
    from torchprac.data.images import IMG_EXTENSIONS

    if not s.input:
        raise ConfigError("predict.input", s.input, "a CSV, an .npz, an image folder or an image file to predict on")
    path = Path(str(s.input)).expanduser()
    if not path.exists():
        raise DataError(f"predict.input={s.input!r} does not exist (resolved to {path.resolve()}).")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in IMG_EXTENSIONS:
        return _image_inputs(path, trained)
    if suffix == ".npz":
        ids, x = _npz_inputs(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        ids, x = _csv_inputs(path, trained.meta, s)
    else:
        raise ConfigError("predict.input", s.input, "a .csv, .npz, image file or folder of images")
    x_t = torch.from_numpy(np.ascontiguousarray(x)).float()
    if x_t.ndim == 2 and len(trained.meta.input_shape) > 1 and x_t.shape[1] == int(np.prod(trained.meta.input_shape)):
        x_t = x_t.reshape(len(x_t), *trained.meta.input_shape)  # flattened images / signals
    if tuple(x_t.shape[1:]) != tuple(trained.meta.input_shape):
        raise DataError(
            f"predict.input={s.input!r}: examples of shape {tuple(x_t.shape[1:])}, but the model was trained on "
            f"{tuple(trained.meta.input_shape)} (feature count, channels and size must match)."
        )
    return ids, x_t


def normalize(x: torch.Tensor, meta: DataMeta) -> torch.Tensor:
    """The training split's statistics, applied unchanged (never refitted on new data)."""
    if meta.mean is None:
        return x
    return (x - meta.mean.to(x.device)) / meta.std.to(x.device)


@torch.no_grad()
def predict_outputs(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])


def predictions_table(trained: Trained, ids: list[str], outputs: torch.Tensor) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of predictions.csv."""
    from torchprac.train.task import make_task

    meta = trained.meta
    if meta.task == "regression":
        values = make_task("regression", meta.y_mean, meta.y_std).values(outputs).cpu().tolist()
        return ["id", "prediction"], [[i, v] for i, v in zip(ids, values)]
    names = meta.names
    probs = torch.softmax(outputs, dim=1).cpu()
    pred = probs.argmax(1).tolist()
    rows = [[i, names[p], *pr] for i, p, pr in zip(ids, pred, probs.tolist())]
    return ["id", "prediction", *(f"prob_{n}" for n in names)], rows


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    import io

    from torchprac.files import _atomic  # temp file + os.replace: never a half-written file

    buf = io.StringIO()

    w = csv.writer(buf)
    w.writerow(header)
    w.writerows([[f"{v:.6g}" if isinstance(v, float) else v for v in r] for r in rows])
    data = buf.getvalue().encode()
    _atomic(path, lambda f: f.write(data))


def predict(trained: Trained, settings: PredictSettings, run_dir: Path, device: torch.device) -> int:
    """Writes run_dir/predictions.csv; returns the number of examples."""
    ids, x = read_inputs(trained, settings)
    outputs = predict_outputs(trained.model, normalize(x.to(device), trained.meta))
    header, rows = predictions_table(trained, ids, outputs)
    out = run_dir / "predictions.csv"
    write_csv(out, header, rows)
    log.info("predicted %d examples with %s: %s", len(rows), trained.path, out)
    return len(rows)


# -- evaluate ------------------------------------------------------------------------------------
def evaluate_on(trained: Trained, spec, seed: int, device: torch.device, batch_size: int = 4096) -> dict[str, Any]:
    """Loss, metrics (and confusion matrices) of the trained model on each split of `spec`
    and on all of it, the data read with the checkpoint's task, classes and statistics."""
    from sklearn.metrics import confusion_matrix

    from torchprac.data import build_data
    from torchprac.train.task import evaluate, task_of

    meta = trained.meta
    splits = build_data(spec, seed=seed, device=device, meta=meta)
    task, model = task_of(meta), trained.model.eval()
    metrics: dict[str, dict[str, float]] = {}
    confusion: dict[str, list[list[int]]] = {}
    outputs, targets = [], []
    labels = list(range(meta.num_outputs))
    for name, split in splits.items():
        ev = evaluate(model, split, batch_size, task=task)  # exactly what the training run reports
        metrics[name] = {k: float(ev[k]) for k in task.names}
        with torch.no_grad():  # the outputs (small) for the confusion and `all`; inputs may be streamed
            o = torch.cat([model(xb).float() for xb, _ in split.batches(batch_size)])
        outputs.append(o)
        targets.append(split.y)
        if task.name == "classification":
            confusion[name] = confusion_matrix(split.y.cpu().numpy(), o.argmax(1).cpu().numpy(), labels=labels).tolist()
    o, y = torch.cat(outputs), torch.cat(targets)
    ev = task.finish(task.loss_sum(o, y), task.zeros(y.device) + task.batch_sums(o, y), len(y))  # float64 sums
    metrics["all"] = {k: float(ev[k]) for k in task.names}
    if task.name == "classification":
        confusion["all"] = confusion_matrix(y.cpu().numpy(), o.argmax(1).cpu().numpy(), labels=labels).tolist()
    sizes = {name: len(s) for name, s in splits.items()}
    out: dict[str, Any] = {
        "checkpoint": str(trained.path),
        "data": spec.name,
        "task": meta.task,
        "sizes": {**sizes, "all": len(y)},
        "metrics": metrics,
    }
    if confusion:
        out["class_names"] = meta.names
        out["confusion"] = confusion  # rows: true class, columns: predicted class
    return out


def print_evaluation(out: dict[str, Any]) -> None:
    log.info("evaluated %s on data=%s (%s)", out["checkpoint"], out["data"], out["task"])
    for s, v in out["metrics"].items():
        log.info("  %s", f"{s:<5} n={out['sizes'][s]:<6} " + "  ".join(f"{k} {x:.4f}" for k, x in v.items()))
    cm = out.get("confusion", {}).get("all")
    if cm is not None and len(cm) <= 20:
        names = [n[:10] for n in out["class_names"]]
        width = max(6, *(len(n) for n in names))
        log.info("  confusion (all; rows true, columns predicted):")
        log.info("  %s", " " * width + " ".join(f"{n:>{width}}" for n in names))
        for n, row in zip(names, cm):
            log.info("  %s", f"{n:>{width}}" + " ".join(f"{c:>{width}}" for c in row))


# -- the modes -----------------------------------------------------------------------------------
def run_use(rc) -> float:
    """mode=predict / mode=evaluate (`rc`: config.RunConfig). predict returns the number of
    predictions; evaluate the accuracy (classification) or R² (regression) on all the data."""
    from torchprac.files import write_json
    from torchprac.run import resolve_device

    pretrained = rc.transfer.pretrained
    if not pretrained:
        raise ConfigError(
            "model.pretrained", pretrained, f"the run dir or checkpoint (.pt) of a trained model for mode={rc.mode}"
        )
    device = resolve_device(rc.trainer.device)
    run_dir = rc.run_dir or Path("outputs/run")
    trained = load_trained(pretrained, device)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rc.mode == "predict":
        settings = registry.get("predict", "default").build(dict(rc.raw.get("predict") or {}))
        return float(predict(trained, settings, run_dir, device))
    seed = trained.seed if isinstance(trained.seed, int) else rc.trainer.seed
    out = evaluate_on(trained, rc.data, seed, device, rc.trainer.eval_batch_size)
    write_json(run_dir / "evaluation.json", out)
    print_evaluation(out)
    log.info("wrote %s", run_dir / "evaluation.json")
    key = "accuracy" if trained.meta.task == "classification" else "r2"
    return float(out["metrics"]["all"][key])
