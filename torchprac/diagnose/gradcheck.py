"""Gradient check: does backprop agree with finite differences of J(theta)?

J(theta) = mean cross-entropy on a few training examples + the run's L1/L2 penalty, evaluated
on a float64 copy of the model in eval mode (dropout off, batch norm on its running
statistics), so J is a deterministic function of the parameters and each example is
independent. Two checks per parameter tensor:

(a) torch.autograd.gradcheck (full Jacobian for small tensors, its random-direction
    `fast_mode` for big ones), and
(b) the course's relative difference ||g_approx - g||_2 / (||g_approx||_2 + ||g||_2) with the
    two-sided g_approx_i = (J(theta_i + eps) - J(theta_i - eps)) / (2 eps) on a sample of
    coordinates (all of them for small tensors), so the cost stays bounded on big models.

Kinks (ReLU-family at 0, ReLU6/Hardtanh at their clip points, max-pool ties, |w| of L1 at 0):
finite differences are wrong where theta +/- eps straddles a kink. The examples are chosen
from a pool to be far from every kink, a coordinate whose +/- eps evaluations land on
different sides of a kink (compared through the activation pattern) is skipped and counted,
and a failure of (a) while some input is within KINK_MARGIN of a kink is reported as
inconclusive rather than as a bug. Max-norm is a projection after the optimizer step, not a
term of J, so it has nothing to check.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.gradcheck import GradcheckError as TorchGradcheckError
from torch.func import functional_call

from torchprac.errors import GradcheckError
from torchprac.reg.penalty import Penalty, penalized_weights
from torchprac.utils import unwrap

log = logging.getLogger("torchprac")

# Verdict bands on the relative difference (float64, two-sided eps: a correct backward gives
# ~1e-9). Between CHECK and BUG ("suspect") is still far above what rounding or truncation can
# explain in float64, so it fails the check too.
OK, CHECK, BUG = 1e-7, 1e-5, 1e-3
ROUNDING = 10.0  # safety factor on the float64 rounding of J in the finite-difference resolution
KINK_MARGIN = 1e-4  # an activation input closer than this to a kink makes (a) inconclusive
FULL_MODE_MAX = 200  # tensors up to this many entries get torch's full (per-coordinate) gradcheck


def verdict(rel: float) -> str:
    if rel != rel:  # NaN: non-finite J or gradient
        return "bug"
    if rel <= OK:
        return "ok"
    if rel <= CHECK:
        return "check"
    if rel <= BUG:
        return "suspect"
    return "bug"


FAILING = ("suspect", "bug")


def _kinks(m: nn.Module) -> list[float]:
    """Points where the module's first derivative jumps (empty for smooth activations)."""
    if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.SELU)):
        return [0.0]
    if isinstance(m, nn.ELU):
        return [] if float(m.alpha) == 1.0 else [0.0]
    if isinstance(m, nn.ReLU6):
        return [0.0, 6.0]
    if isinstance(m, nn.Hardtanh):
        return [float(m.min_val), float(m.max_val)]
    if isinstance(m, (nn.Hardswish, nn.Hardsigmoid)):
        return [-3.0, 3.0]
    return []


_POOLS = (nn.MaxPool1d, nn.MaxPool2d)


class _KinkProbe:
    """Forward hooks on kinked modules. `pattern` records which side of each kink every input
    lies on (and the max-pool argmax); `margin` records each example's distance to the
    nearest kink."""

    def __init__(self, model: nn.Module) -> None:
        self.handles = []
        self.pattern: list[torch.Tensor] = []
        self.margin: torch.Tensor | None = None
        for m in model.modules():
            if _kinks(m) or isinstance(m, _POOLS):
                self.handles.append(m.register_forward_hook(self._hook))

    def _hook(self, m: nn.Module, inputs: tuple, _out: torch.Tensor) -> None:
        z = inputs[0].detach()
        if isinstance(m, _POOLS):
            fn = F.max_pool2d if isinstance(m, nn.MaxPool2d) else F.max_pool1d
            _, idx = fn(z, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, True)
            self.pattern.append(idx)
            return
        for k in _kinks(m):
            self.pattern.append(z > k)
            d = (z - k).abs().flatten(1).amin(1)
            self.margin = d if self.margin is None else torch.minimum(self.margin, d)

    def reset(self) -> None:
        self.pattern, self.margin = [], None

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


@dataclass
class TensorCheck:
    name: str
    shape: list[int]
    checked: int  # coordinates compared in (b)
    skipped: int  # coordinates skipped because +/- eps straddles a kink
    grad_norm: float
    approx_norm: float
    rel_diff: float
    verdict: str
    torch_mode: str  # full | fast
    torch_ok: bool | None  # None: inconclusive (near a kink)
    torch_message: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict in FAILING or self.torch_ok is False


@dataclass
class GradcheckReport:
    rows: list[TensorCheck]
    n_examples: int
    eps: float
    kink_margin: float  # the chosen examples' smallest distance to a kink (inf: no kinks)
    notes: list[str] = field(default_factory=list)
    resolution: float = 0.0  # finite-difference resolution per coordinate

    @property
    def passed(self) -> bool:
        return not any(r.failed for r in self.rows)

    @property
    def worst(self) -> TensorCheck:
        def key(r: TensorCheck) -> tuple:
            # kink (no coordinate left) and tiny (below resolution) rows carry no evidence
            if r.failed:
                rel = r.rel_diff if r.rel_diff == r.rel_diff else float("inf")
            else:
                rel = r.rel_diff if r.verdict in ("ok", "check") else -1.0
            return (r.failed, rel)

        return max(self.rows, key=key)

    @property
    def first_failing(self) -> TensorCheck | None:
        """The failing tensor closest to the output. A wrong backward corrupts every gradient
        upstream of it, so the bug sits at the LAST failing tensor in forward order, which is
        not necessarily the one with the largest error."""
        failing = [r for r in self.rows if r.failed]
        return failing[-1] if failing else None

    def table(self) -> str:
        head = (
            f"{'tensor':<28} {'shape':<14} {'coords':>9} {'|g|':>10} {'|g_approx|':>10} "
            f"{'rel diff':>9}  {'verdict':<8} torch.gradcheck"
        )
        lines = [head, "-" * len(head)]
        for r in self.rows:
            torch_s = {True: "pass", False: "FAIL", None: "kink?"}[r.torch_ok] + f" ({r.torch_mode})"
            coords = f"{r.checked}" + (f"-{r.skipped}k" if r.skipped else "")
            lines.append(
                f"{r.name:<28} {str(tuple(r.shape)):<14} {coords:>9} {r.grad_norm:>10.3e} "
                f"{r.approx_norm:>10.3e} {r.rel_diff:>9.2e}  {r.verdict:<8} {torch_s}"
            )
        lines.append(
            f"{self.n_examples} examples, float64, two-sided eps={self.eps:g}; verdicts: "
            f"ok <= {OK:g} < check <= {CHECK:g} < suspect <= {BUG:g} < bug "
            "(suspect and bug fail); '-Nk': N coordinates skipped at a kink"
        )
        lines += self.notes
        return "\n".join(lines)

    def to_dict(self) -> dict:
        w = self.worst
        return {
            "passed": self.passed,
            "worst_tensor": w.name,
            "worst_rel_diff": w.rel_diff,
            "n_examples": self.n_examples,
            "eps": self.eps,
            "rows": [asdict(r) for r in self.rows],
        }


def _min_nonzero(t: torch.Tensor) -> float:
    a = t.abs()
    a = a[a > 0]
    return float(a.min()) if a.numel() else float("inf")


def _pick_examples(model: nn.Module, x: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the n pool examples farthest from any kink (all examples are independent in
    eval mode, so the choice does not change the others' activations)."""
    if len(x) <= n:
        return torch.arange(len(x), device=x.device)
    probe = _KinkProbe(model)
    try:
        with torch.no_grad():
            model(x)
        margin = probe.margin
    finally:
        probe.remove()
    if margin is None:
        return torch.arange(n, device=x.device)
    return margin.topk(n).indices.sort().values


def check_gradients(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    n_examples: int = 4,
    pool: int = 256,
    coords_per_tensor: int = 20,
    eps: float = 1e-6,
    seed: int = 0,
) -> GradcheckReport:
    """Check dJ/dtheta for every parameter tensor of `model` (left untouched: a float64 copy is
    checked). J = mean cross-entropy on n_examples of (x, y) + l1 sum|W| + l2/2 sum ||W||^2 over
    the weights the run penalises (Linear/conv weights by default)."""
    # Thousands of tiny float64 forwards: one intra-op thread is much faster than several
    # (no fork/join per op, and no spinning when the machine is busy).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _check(model, x, y, l1, l2, n_examples, pool, coords_per_tensor, eps, seed)
    finally:
        torch.set_num_threads(threads)


def _check(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    l1: float,
    l2: float,
    n_examples: int,
    pool: int,
    coords_per_tensor: int,
    eps: float,
    seed: int,
) -> GradcheckReport:
    m64 = copy.deepcopy(unwrap(model)).double().eval()
    for p in m64.parameters():
        p.requires_grad_(False)
    xp = x[:pool].detach().double()
    idx = _pick_examples(m64, xp, n_examples)
    xb, yb = xp[idx], y[:pool][idx].detach()

    names = [n for n, _ in m64.named_parameters()]
    theta = {n: p.detach().clone() for n, p in m64.named_parameters()}
    pen_ids = {id(w) for w in penalized_weights(m64)}  # the same tensors the run's Penalty uses
    pen_names = [n for n, p in m64.named_parameters() if id(p) in pen_ids]

    def J(params: dict[str, torch.Tensor]) -> torch.Tensor:
        out = functional_call(m64, params, (xb,))
        if yb.is_floating_point():  # regression (data.task): the MSE the Trainer minimises
            loss = F.mse_loss(out.reshape(yb.shape), yb.to(out.dtype))
        else:
            loss = F.cross_entropy(out, yb)
        if (l1 or l2) and pen_names:  # the run's own penalty, on these parameter values
            loss = loss + Penalty([params[n] for n in pen_names], l1=l1, l2=l2)()
        return loss

    # Analytic gradient: one backward through J.
    leaves = {n: t.clone().requires_grad_(True) for n, t in theta.items()}
    grads = dict(zip(names, torch.autograd.grad(J(leaves), [leaves[n] for n in names])))

    probe = _KinkProbe(m64)
    with torch.no_grad():
        probe.reset()
        j0 = float(J(theta))
    # Finite-difference resolution: J(theta +/- eps) are rounded to ~2^-52 |J|, so a difference
    # below this per coordinate is rounding noise (vanishing gradients live there).
    resolution = ROUNDING * torch.finfo(torch.float64).eps * max(abs(j0), 1.0) / eps
    kink_margin = float(probe.margin.min()) if probe.margin is not None else float("inf")
    # |w| has its kink at 0: only 0 < |w| < eps is straddled (w = 0 exactly is symmetric, exact)
    l1_margin = min((_min_nonzero(theta[n]) for n in pen_names), default=float("inf")) if l1 else float("inf")
    near_kink = kink_margin < KINK_MARGIN or l1_margin < eps

    gen = torch.Generator().manual_seed(seed)
    rows: list[TensorCheck] = []
    # A deep net takes minutes (gallery_selu: 202 tensors): a bar on a terminal, none in logs.
    from tqdm.auto import tqdm

    try:
        for n in tqdm(names, desc="gradient check", unit="tensor", disable=None, leave=False, dynamic_ncols=True):
            rows.append(
                _check_tensor(
                    n,
                    theta,
                    grads[n],
                    J,
                    probe,
                    eps,
                    coords_per_tensor,
                    gen,
                    l1 if n in pen_names else 0.0,
                    near_kink,
                    resolution,
                )
            )
    finally:
        probe.remove()
    notes = []
    if near_kink:
        notes.append(
            f"note: an activation input lies within {KINK_MARGIN:g} of a kink, or an L1-penalised weight "
            "within eps of 0, so a torch.gradcheck failure is reported as 'kink?' (inconclusive)."
        )
    if any(r.verdict == "tiny" for r in rows):
        notes.append(
            f"tiny: |g_approx - g| is below the finite-difference resolution ({resolution:.1e} per "
            "coordinate, from rounding J in float64): these gradients are too small to check "
            "(vanishing gradients?), so their relative difference means nothing."
        )
    return GradcheckReport(rows, len(idx), eps, min(kink_margin, l1_margin), notes, resolution)


@torch.no_grad()
def _check_tensor(
    name: str,
    theta: dict[str, torch.Tensor],
    g: torch.Tensor,
    J,
    probe: _KinkProbe,
    eps: float,
    k: int,
    gen: torch.Generator,
    l1: float,
    near_kink: bool,
    resolution: float,
) -> TensorCheck:
    t = theta[name]
    flat = t.view(-1)
    coords = torch.arange(flat.numel()) if flat.numel() <= k else torch.randperm(flat.numel(), generator=gen)[:k]
    approx, exact, skipped = [], [], 0
    for i in coords.tolist():
        if l1 and abs(float(flat[i])) < eps and float(flat[i]) != 0.0:
            skipped += 1  # |w| straddles 0: two-sided differences see the kink of L1
            continue
        orig = flat[i].clone()
        flat[i] = orig + eps
        probe.reset()
        jp = J(theta)
        pat_p = probe.pattern
        flat[i] = orig - eps
        probe.reset()
        jm = J(theta)
        pat_m = probe.pattern
        flat[i] = orig
        if any(not torch.equal(a, b) for a, b in zip(pat_p, pat_m)):
            skipped += 1  # the activation pattern changed between +eps and -eps: a kink
            continue
        approx.append((jp - jm) / (2 * eps))
        exact.append(g.view(-1)[i])
    if approx:
        ga, ge = torch.stack(approx), torch.stack(exact)
        an, gn = float(ga.norm()), float(ge.norm())
        num = float((ga - ge).norm())
        rel = 0.0 if an + gn == 0.0 else num / (an + gn)
    else:
        an = gn = rel = num = float("nan")
    v = verdict(rel) if approx else "kink"  # every sampled coordinate straddles a kink
    if v != "ok" and approx and num <= resolution * len(approx) ** 0.5:
        v = "tiny"

    # (a) torch.autograd.gradcheck on this tensor alone, the others held fixed.
    mode = "full" if t.numel() <= FULL_MODE_MAX else "fast"

    def f(p: torch.Tensor) -> torch.Tensor:
        return J({**theta, name: p})

    with torch.enable_grad():
        try:
            torch.autograd.gradcheck(
                f,
                (t.clone().requires_grad_(True),),
                eps=eps,
                atol=1e-5,
                rtol=1e-3,
                fast_mode=mode == "fast",
                raise_exception=True,
            )
            ok, msg = True, ""
        except TorchGradcheckError as e:
            ok, msg = (None if near_kink else False), str(e).strip().splitlines()[0]
    return TensorCheck(name, list(t.shape), len(approx), skipped, gn, an, rel, v, mode, ok, msg)


# -- the run stage ------------------------------------------------------------------------
def run_gradcheck(
    model: nn.Module,
    train,
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    seed: int = 0,
    logger=None,
    run_dir: Path | None = None,
    **kwargs,
) -> GradcheckReport:
    """The gradcheck stage of a run: check, print the table, log it to TensorBoard text
    `gradcheck`, write gradcheck.json, and raise GradcheckError naming the worst tensor."""
    report = check_gradients(model, train.x, train.y, l1=l1, l2=l2, seed=seed, **kwargs)
    table = report.table()
    log.info("gradient check (J = data loss + penalty):\n%s", table)
    if logger is not None:
        logger.text("gradcheck", "```\n" + table + "\n```")
        logger.flush()
    if run_dir is not None:
        (Path(run_dir) / "gradcheck.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if not report.passed:
        w = report.first_failing or report.worst
        why = (
            f"relative difference {w.rel_diff:.2e} ({w.verdict}; ok <= {OK:g}, bug > {BUG:g})"
            if w.verdict in FAILING
            else f"torch.autograd.gradcheck failed: {w.torch_message}"
        )
        raise GradcheckError(
            f"Gradient check failed: backprop disagrees with finite differences for '{w.name}' "
            f"(shape {tuple(w.shape)}), the failing tensor closest to the output: {why}. The layer that "
            f"holds it (or a custom autograd.Function between it and the output) has a wrong backward; "
            f"failing tensors before it inherit the error. Full table:\n{table}"
        )
    log.info("gradient check passed (worst: %s, relative difference %.2e)", report.worst.name, report.worst.rel_diff)
    return report
