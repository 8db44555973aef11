"""The end of a run: figures/ in the run dir and the same pictures in TensorBoard.

    figures/decision_boundary.png   2-feature data: the boundary of the weights the run reports
    figures/activations.png         per-layer activations over training (viz.activations)
    figures/confusion_dev.png       dev (and confusion_test.png) normalised by true class
    figures/learning_curves.png     loss and error vs epochs, best epoch, early stop, the gaps

and the per-class accuracy of dev and test for metrics.json ("per_class_accuracy")."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torchprac.viz.settings import VizSettings

log = logging.getLogger("torchprac")


def write_run_figures(
    settings: VizSettings,
    run_dir: Path,
    model,
    splits,
    result,
    out: dict[str, Any],
    bayes_error: float = 0.0,
    autocast=None,
    logger=None,
    callback=None,
) -> dict[str, Any]:
    """Draw and save the run's figures; returns what goes into metrics.json
    ({"per_class_accuracy": {"dev": [...], "test": [...]}} or {}). A figure that fails is
    reported in the log and skipped: pictures never cost a run its results."""
    from contextlib import nullcontext

    from torchprac.viz.callback import predict_labels
    from torchprac.viz.figures import per_class_accuracy, save_png
    from torchprac.viz.painter import Batch, Picture, draw, in_background

    figdir = Path(run_dir) / "figures"
    writer = getattr(logger, "writer", None)
    extra: dict[str, Any] = {}
    title = f"{settings.run_name}: " if settings.run_name else ""
    pictures: list[Picture] = []

    def attempt(what: str, fn) -> None:
        try:
            fn()
        except Exception as e:
            log.warning("viz: %s could not be drawn (%s: %s)", what, type(e).__name__, e)

    diverged = str(result.status) == "diverged"
    # confusion matrices describe class labels (data.task); regression curves show the loss alone
    labels = getattr(splits, "task", "classification") == "classification"
    if settings.confusion and not diverged and labels:
        per_class: dict[str, list] = {}

        def confusions() -> None:  # the predictions here; the drawing wherever the painter draws
            for name, split in (("dev", splits.dev), ("test", splits.test)):
                if split is None or not len(split):
                    continue
                y = split.y.cpu().numpy()
                pred = predict_labels(model, split.x, autocast or nullcontext)
                per_class[name] = per_class_accuracy(y, pred, splits.num_classes)
                kwargs = dict(title=f"{title}{name}", class_names=getattr(splits, "class_names", None))
                pictures.append(Picture(f"confusion_{name}", "confusion_matrix", (y, pred, splits.num_classes), kwargs))

        attempt("the confusion matrices", confusions)
        if per_class:
            extra["per_class_accuracy"] = per_class

    if settings.learning_curves and result.history:
        kwargs = dict(
            best_epoch=result.best_epoch + 1,
            early_stopped=str(result.status) == "early_stopped",
            bayes_error=bayes_error,
            final=out.get("metrics") or None,
            title=f"{title}learning curves",
        )
        pictures.append(Picture("learning_curves", "learning_curves", (result.history,), kwargs))

    activations = getattr(callback, "activations_picture", None)
    if activations is not None and (pic := activations()) is not None:
        pictures.insert(0, pic)  # the largest first: a background batch is shared out from both ends

    # Drawn (and logged to TensorBoard) by the VizCallback at the end of fit: saved here.
    for name, png in (getattr(callback, "images", None) or {}).items():
        attempt(f"figures/{name}.png", lambda n=name, im=png: save_png(im, figdir / f"{n}.png"))

    if pictures:
        tb_dir = writer.get_logdir() if writer is not None else None
        draw(Batch(pictures, figdir, tb_dir, out.get("epochs_run", 0)), writer, in_background(settings))
    return extra
