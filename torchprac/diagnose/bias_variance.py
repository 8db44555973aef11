"""Bias/variance diagnosis from train error, dev error and the Bayes-error proxy, with the
course's basic recipe as recommendations that account for what the run already uses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torchprac.registry import num, register


@dataclass
class Diagnosis:
    verdict: str  # ok | high_bias | high_variance | high_bias_and_variance
    bayes_error: float
    avoidable_bias: float
    variance: float
    train_error: float
    dev_error: float
    recommendations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        lines = [
            f"verdict: **{self.verdict}**",
            f"train error {self.train_error:.4f}, dev error {self.dev_error:.4f}, "
            f"Bayes error (proxy) {self.bayes_error:.4f}",
            f"avoidable bias = train - bayes = {self.avoidable_bias:.4f}; variance = dev - train = {self.variance:.4f}",
        ]
        lines += [f"- {r}" for r in self.recommendations]
        return "\n".join(lines)


def _active_reg(ctx: dict) -> list[str]:
    """What the run uses that adds bias / fights variance, as names for the messages."""
    on = sorted(ctx.get("reg", {}))
    if float(ctx.get("weight_decay") or 0.0) > 0:
        on.append("optimizer.weight_decay")
    return on


def _bias_recipe(ctx: dict) -> list[str]:
    recs = []
    hidden = ctx.get("hidden") or []
    recs.append(f"Bigger network: more or wider hidden layers (now model.hidden={list(hidden)}).")
    if ctx.get("early_stopped"):
        recs.append(
            "Train longer: early stopping ended the run; raise trainer.early_stopping.patience or trainer.epochs."
        )
    else:
        recs.append(f"Train longer: raise trainer.epochs (now {ctx.get('epochs')}).")
    if ctx.get("optimizer") in ("gd", "sgd"):
        recs.append(f"Better optimizer: optimizer={ctx.get('optimizer')} -> try optimizer=adam or optimizer=nesterov.")
    elif ctx.get("scheduler", "none") not in (None, "none"):
        recs.append(
            f"Better optimizer settings: tune optimizer.lr and the schedule (scheduler={ctx.get('scheduler')} is on)."
        )
    else:
        recs.append("Better optimizer settings: tune optimizer.lr or add a schedule (scheduler=onecycle).")
    if ctx.get("activation") in ("sigmoid", "tanh"):
        recs.append(
            f"Non-saturating activation: activation={ctx.get('activation')} -> activation=relu "
            "or elu with init=he_normal."
        )
    if ctx.get("batch_norm", "none") == "none":
        recs.append("Better architecture: batch norm (model.batch_norm=before) eases optimisation of deep nets.")
    on = _active_reg(ctx)
    if on:
        recs.append(f"Less regularization: the run uses {on}; weaken it (regularization adds bias).")
    return recs


def _variance_recipe(ctx: dict) -> list[str]:
    """Each lever appears once: "stronger ..." when the run already uses it, "add ..." only when
    it is off, so a regularizer that is on is never suggested as if it were off."""
    reg = ctx.get("reg", {})
    subset = ctx.get("train_subset")
    if subset:
        recs = [f"More data: the run trains on data.train_subset={subset} examples; raise it or set it to null."]
    else:
        recs = ["More data: collect more training examples (or synthesise them, see augmentation)."]
    wd = float(ctx.get("weight_decay") or 0.0)
    if "l2" in reg:
        recs.append(f"Stronger L2: raise reg.l2.strength (now {reg['l2'].get('strength')}).")
    elif "elastic" in reg:
        recs.append(f"Stronger elastic net: raise reg.elastic.l2 (now {reg['elastic'].get('l2')}).")
    elif wd > 0:
        recs.append(f"Stronger weight decay (L2): raise optimizer.weight_decay (now {wd:g}).")
    elif "l1" in reg:
        recs.append(
            f"Stronger L1: raise reg.l1.strength (now {reg['l1'].get('strength')}), or add L2 next to it (reg=[l1,l2])."
        )
    else:
        recs.append("Regularization: add L2 (reg=[l2]).")
    if "dropout" in reg:
        kp = reg["dropout"].get("keep_prob")
        recs.append(f"Lower keep_prob: dropout is on (reg.dropout.keep_prob={kp}); drop more units.")
    elif "alpha_dropout" in reg:
        kp = reg["alpha_dropout"].get("keep_prob")
        recs.append(f"Lower keep_prob: alpha dropout is on (reg.alpha_dropout.keep_prob={kp}).")
    else:
        recs.append("Dropout: add reg=[dropout] (inverted dropout, keep_prob 0.8).")
    if "max_norm" in reg:
        recs.append(f"Tighter max-norm: lower reg.max_norm.r (now {reg['max_norm'].get('r')}).")
    if "augment" in reg:
        recs.append("Stronger augmentation: raise reg.augment.shift / reg.augment.noise.")
    else:
        recs.append("Data augmentation: add reg=[augment] (training split only).")
    if ctx.get("early_stopping"):
        recs.append("Early stopping is on: lower trainer.early_stopping.patience to stop sooner.")
    else:
        recs.append("Early stopping: set trainer.early_stopping.enabled=true.")
    recs.append("Smaller network: fewer or narrower hidden layers.")
    return recs


def diagnose(
    train_error: float,
    dev_error: float,
    bayes_error: float = 0.0,
    bias_threshold: float = 0.05,
    variance_threshold: float = 0.05,
    context: dict | None = None,
) -> Diagnosis:
    ctx = context or {}
    bias = train_error - bayes_error
    var = dev_error - train_error
    hb, hv = bias > bias_threshold, var > variance_threshold
    verdict = {
        (False, False): "ok",
        (True, False): "high_bias",
        (False, True): "high_variance",
        (True, True): "high_bias_and_variance",
    }[(hb, hv)]
    recs: list[str] = []
    if hb:
        recs += _bias_recipe(ctx)
    if hv:
        recs += _variance_recipe(ctx)
    if not recs:
        recs.append(
            "Bias and variance are both within the thresholds: look at the test error, or lower "
            "diagnosis.bias_threshold / diagnosis.variance_threshold to dig further."
        )
    return Diagnosis(verdict, bayes_error, bias, var, train_error, dev_error, recs)


@dataclass
class Thresholds:
    """The `diagnosis` config section: absolute error rates above which bias / variance is high."""

    bias_threshold: float = 0.05
    variance_threshold: float = 0.05


register("diagnosis", "default", bias_threshold=num(0, 1), variance_threshold=num(0, 1))(Thresholds)
