"""HParams as a person sees them in a sweep.

TensorBoard's HParams tab takes the experiment summary (which hparams exist, their values,
whether they differ) from the first run that has one; when every run writes its own, each
lists only its own value, every column reports `differs: false` and the swept columns are
hidden. So a job of a multirun writes only its session (hparams + final metrics), and the
sweep writes ONE experiment summary at its root when it ends (`write_sweep_hparams`): the
union of the runs' keys, the discrete values each takes, differing columns first, a `status`
column (completed / early_stopped / diverged / failed), failed jobs listed too. Booleans are
written as strings ("true"/"false"): the tab shows a boolean hparam as 0.0000.

Until the sweep ends (or for an interrupted one before `python -m torchprac.report`), the tab
computes the summary from the sessions, with `differs` right as well."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("torchprac")

SUFFIX = ".sweep_hparams"  # the sweep root's event file (replaced when rewritten)
CURVE_METRICS = ("loss/train", "loss/dev", "metric/accuracy_train", "metric/accuracy_dev")


def run_hparams(hparams: dict[str, Any], status: str) -> dict[str, Any]:
    """The HParams row of a run: booleans as strings, and its status."""
    out = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in hparams.items()}
    out["status"] = str(status)
    return out


def _summary(tag: str, **plugin_data):
    """A Summary holding HParams plugin data (tensorboard's own hparams.summary needs TensorFlow)."""
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    content = HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **plugin_data).SerializeToString()
    smd = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=content))
    return Summary(value=[Summary.Value(tag=tag, metadata=smd)])


def _session(writer, hparams: dict[str, Any], metrics: dict[str, float], status: str) -> None:
    from tensorboard.plugins.hparams import api_pb2, metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import SessionEndInfo, SessionStartInfo

    start = SessionStartInfo(start_time_secs=time.time())
    for k, v in hparams.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            start.hparams[k].number_value = v
        else:
            start.hparams[k].string_value = str(v).lower() if isinstance(v, bool) else str(v)
    ok = status in ("completed", "early_stopped")
    end = SessionEndInfo(status=api_pb2.STATUS_SUCCESS if ok else api_pb2.STATUS_FAILURE, end_time_secs=time.time())
    fw = writer._get_file_writer()
    fw.add_summary(_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start))
    fw.add_summary(_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end))
    for k, v in metrics.items():
        writer.add_scalar(k, v)


def log_run_hparams(logger, hparams: dict[str, Any], metrics: dict[str, float], in_sweep: bool) -> None:
    """A single run writes its own experiment summary (TBLogger.hparams); a sweep's job only
    its session, the sweep writes the summary once."""
    if not in_sweep:
        logger.hparams(hparams, metrics)
        return
    writer = getattr(logger, "writer", None)
    if writer is not None:  # rank 0
        _session(writer, hparams, metrics, str(hparams.get("status", "")))


# -- the sweep's experiment summary --------------------------------------------------------------
def _hparam_info(name: str, values: list[Any]):
    from tensorboard.plugins.hparams import api_pb2

    present = [v for v in values if v is not None]
    numeric = bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    kind = api_pb2.DATA_TYPE_FLOAT64 if numeric else api_pb2.DATA_TYPE_STRING
    distinct = sorted({float(v) for v in present} if numeric else {str(v) for v in present})
    # `differs` picks the columns the tab shows at first: the swept ones, and always the status
    info = api_pb2.HParamInfo(name=name, type=kind, differs=len(distinct) > 1 or name == "status")
    info.domain_discrete.extend(distinct)
    return info


def _event_dirs(job: Path) -> list[Path]:
    return sorted({p.parent for p in job.rglob("events.out.tfevents.*") if "checkpoints" not in p.parts})


def write_sweep_hparams(root: str | Path, rows: list[dict[str, Any]]) -> Path | None:
    """One experiment summary at the sweep root for the jobs in `rows` (sweep_summary's rows);
    a failed job without a session gets one (status failed, the hparams its overrides name)."""
    from tensorboard.plugins.hparams import api_pb2, metadata
    from torch.utils.tensorboard import SummaryWriter

    from torchprac.viz.names import named_overrides, override_key, run_name

    root = Path(root)
    runs: list[tuple[dict, dict]] = []  # (row, hparams)
    names: set[str] = set()  # the final metrics the runs have (regression: rmse, mae, r2 too)
    for r in rows:
        try:
            m = json.loads((root / r["job"] / "metrics.json").read_text())
        except (OSError, ValueError):
            m = {}
        runs.append((r, dict(m.get("hparams") or {})))
        names |= {f"hparam/{s}_{k}" for s, v in (m.get("metrics") or {}).items() for k in v}
    keys = sorted({k for _, h in runs for k in h})
    # A failed job: its status, and the hparams its overrides name (optimizer=adam -> optimizer).
    sweep = _multirun_overrides(root)
    for r, h in runs:
        if h:
            continue
        h["status"] = r.get("status", "failed")
        for o in r.get("overrides", "").split():
            k, v = override_key(o).rsplit(".", 1)[-1], o.split("=", 1)[-1]
            if k in keys:
                h[k] = _number(v)
        job = root / r["job"]
        if not any(_has_session(d) for d in _event_dirs(job)):
            name = run_name(named_overrides(r.get("overrides", "").split(), sweep))
            with SummaryWriter(str(job / name) if name else str(job), filename_suffix=SUFFIX) as w:
                _session(w, h, {}, h["status"])
    keys = sorted({k for _, h in runs for k in h})
    infos = [_hparam_info(k, [h.get(k) for _, h in runs]) for k in keys]
    infos.sort(key=lambda i: (not i.differs, i.name))
    tags = sorted(names or {f"hparam/{s}_{m}" for s in ("train", "dev", "test") for m in ("loss", "accuracy")})
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t)) for t in [*tags, "hparam/epochs_run", *CURVE_METRICS]]
    for old in root.glob(f"events.out.tfevents.*{SUFFIX}"):
        old.unlink()
    with SummaryWriter(str(root), filename_suffix=SUFFIX) as w:
        exp = api_pb2.Experiment(
            description=f"sweep {root}: {len(runs)} runs", time_created_secs=time.time(), hparam_infos=infos
        )
        exp.metric_infos.extend(metrics)
        w._get_file_writer().add_summary(_summary(metadata.EXPERIMENT_TAG, experiment=exp))
    return next(iter(root.glob(f"events.out.tfevents.*{SUFFIX}")), None)


def _number(v: str) -> Any:
    try:
        f = float(v)
        return f if math.isfinite(f) else v
    except ValueError:
        return v


def _has_session(event_dir: Path) -> bool:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    for f in event_dir.glob("events.out.tfevents.*"):
        for ev in EventFileLoader(str(f)).Load():
            for v in ev.summary.value:
                if v.tag == "_hparams_/session_start_info":
                    return True
    return False


def _multirun_overrides(root: Path) -> list[str] | None:
    f = root / "multirun.yaml"
    if not f.is_file():
        return None
    import yaml

    try:
        cfg = yaml.safe_load(f.read_text()) or {}
        return list(((cfg.get("hydra") or {}).get("overrides") or {}).get("task") or [])
    except (OSError, yaml.YAMLError):
        return None
