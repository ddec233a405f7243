"""The optimisation loop behind :meth:`glocal.GlocalTransform.fit`.

Speed comes from the structure of the global loss: it depends only on the m × m similarity
matrix of the transformed THINGS objects. Each step transforms the m objects once, forms
``S = Z Zᵀ`` and gathers the three logits of every triplet in the batch by flat index.

The loop in named parts: :class:`FitSettings` (what it reads), :func:`_prepare` (tensors,
batching and the monitoring data), :func:`_start` (the starting map), :func:`_check` (the
monitored objective) and :class:`StoppingRule` (what a check decides).

Schedule, independent of how steps group into passes over the triplets: every ``eval_every``
steps the monitored objective is measured (a "check"); a check that fails to beat the last
improving check by the relative ``tol`` halves the step size, and ``patience`` such checks in
a row end the fit. The parameters of the best check are kept. The monitored objective is the
fitted one on held-out data: ``(1 − α)`` · validation global loss + ``α`` · local divergence
(:func:`glocal.losses.local_divergence`) on a held-out slice of the contrast set + ``λ`` ·
penalty.

Start: ``W = β I`` with β the scaled identity of lowest training global loss
(:func:`identity_scale`) and ``b = 0``, so the first Adam steps start from the features' own
geometry at the right scale instead of swamping a tiny ``W``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from glocal import losses
from glocal._device import resolve_device
from glocal._syntax import parse
from glocal.errors import FitDivergedError
from glocal.io import digest
from glocal.scoring import answered_correctly

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
_EVAL_CHUNK = 1 << 20
#: Triplets the initial scale search looks at (a seeded subset of the training triplets).
_SCALE_SEARCH_TRIPLETS = 1 << 18
#: Whether the local term's gradient reaches the bias (the official code: yes). Off: the bias
#: learns from the triplets only (see the comment in :func:`_objective`).
BIAS_LEARNS_FROM_LOCAL = False
#: Share of the contrast rows held out to monitor the local term (at most one contrast batch).
VAL_CONTRAST_SHARE = 0.2
#: Halvings of the step size without a passing check after which a fit keeps its start.
MAX_HALVINGS_AT_START = 10
#: The stop reasons: the rule ended a fit that moved, the start was kept, the step limit.
STOP_REASONS = ("converged", "no_improvement", "max_steps")


#: The code that turns data and settings into fitted weights: per file of the package, None for
#: all of it, else the top-level functions and methods (``Class.method``) on the fit's path.
#: :func:`fit_digest` covers exactly this code.
FIT_CODE: dict[str, tuple[str, ...] | None] = {
    "_fit.py": None,
    "losses.py": None,
    "scoring.py": ("answered_correctly",),
    "transform.py": ("GlocalTransform.fit", "_standardised"),
    "io.py": ("check_feature_matrix",),
    "triplets.py": ("validate_triplets",),
}


def needs_contrast(alpha: float) -> bool:
    """Whether a fit with this ``alpha`` has a local term, and so needs a contrast set."""
    return alpha > 0


def fit_digest(root: str | Path | None = None) -> str:
    """sha256 of the fitting code (:data:`FIT_CODE`), docstrings and comments left out.

    Part of the key of every cached fit: a fit is reused only while the code that made it is
    unchanged, and editing prose (or any code off the fit's path) keeps the caches valid.
    ``root`` is the package folder (default: this one).
    """
    return code_digest(FIT_CODE, root)


def code_digest(code: Mapping[str, tuple[str, ...] | None], root: str | Path | None = None) -> str:
    """sha256 of the syntax trees of ``code`` (as :data:`FIT_CODE`), without docstrings.

    Computed once per state of the files (their size and modification time); parsed one thread
    at a time (:func:`glocal._syntax.parse`)."""
    folder = Path(__file__).parent if root is None else Path(root)
    state = tuple(
        (str(folder / name), members, (folder / name).stat().st_mtime_ns,
         (folder / name).stat().st_size)
        for name, members in sorted(code.items())
    )  # fmt: skip
    return _code_digest(state)


@functools.lru_cache(maxsize=32)
def _code_digest(state: tuple[tuple[str, tuple[str, ...] | None, int, int], ...]) -> str:
    parts: list[str] = []
    for path, members, _, _ in state:
        tree = parse(Path(path).read_text(encoding="utf-8"))
        nodes = [tree] if members is None else [_member(tree, m, Path(path).name) for m in members]
        parts.extend(ast.dump(_without_docstrings(node)) for node in nodes)
    return digest(*parts)


def _member(tree: ast.Module, qualname: str, file: str) -> ast.AST:
    body: list[ast.stmt] = tree.body
    found: ast.AST | None = None
    for part in qualname.split("."):
        found = next((n for n in body if getattr(n, "name", None) == part), None)
        if found is None:
            raise LookupError(f"{file} defines no {qualname}; update the code digest's list")
        body = getattr(found, "body", [])
    assert found is not None
    return found


def _without_docstrings(node: ast.AST) -> ast.AST:
    for inner in ast.walk(node):
        body = getattr(inner, "body", None)
        if (
            isinstance(inner, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            inner.body = body[1:]
    return node


@dataclass(frozen=True)
class FitSettings:
    """The hyper-parameters the loop reads (validated by the estimator)."""

    alpha: float
    lmbda: float
    tau: float
    bias: bool
    regularizer: str
    init_scale: float | None
    optimizer: str
    lr: float
    max_steps: int
    triplet_batch_size: int | None
    contrast_batch_size: int
    early_stopping: bool
    patience: int
    tol: float
    min_steps: int
    eval_every: int
    device: str
    seed: int
    verbose: int

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> FitSettings:
        """The settings among an estimator's ``get_params()`` (other names are ignored)."""
        return cls(**{f.name: params[f.name] for f in dataclasses.fields(cls)})

    @property
    def needs_contrast(self) -> bool:
        """Whether the local term is on (:func:`needs_contrast`)."""
        return needs_contrast(self.alpha)


@dataclass
class FitResult:
    """Fitted parameters and the record of every check."""

    weights: np.ndarray
    bias: np.ndarray | None
    history: list[dict] = field(default_factory=list)
    best_step: int = 0
    n_steps: int = 0
    stop_reason: str = "max_steps"
    init_scale: float = 0.0
    device: str = "cpu"


class _Cycler:
    """Cycle through seeded permutations of ``n`` rows, ``batch_size`` rows at a time.

    Batches are equal (none larger than asked), so a nearly empty last batch never costs a
    full step; with one batch per pass the rows are used in order, unpermuted.
    """

    def __init__(self, n: int, batch_size: int | None, generator: torch.Generator, device):
        largest = n if batch_size is None else min(batch_size, n)
        self.per_pass = math.ceil(n / largest)
        self.batch_size = math.ceil(n / self.per_pass)
        self.n, self.generator, self.device = n, generator, device
        self.order: torch.Tensor | None = None
        self.position = self.per_pass  # start a new pass on the first call

    def next(self) -> torch.Tensor | None:
        """Indices of the next batch (None: all rows, in order)."""
        if self.per_pass == 1:
            return None
        if self.position == self.per_pass:
            self.order = torch.randperm(self.n, generator=self.generator).to(self.device)
            self.position = 0
        start = self.position * self.batch_size
        self.position += 1
        assert self.order is not None  # drawn at the start of every pass
        return self.order[start : start + self.batch_size]


@dataclass
class _Contrast:
    """The local term's contrast rows: those it trains on and those it is monitored on."""

    student: torch.Tensor  # training rows as the student sees them
    teacher: torch.Tensor  # the same rows, original features, unit length
    monitor_student: torch.Tensor
    monitor_teacher: torch.Tensor
    monitor_target: torch.Tensor  # the monitor rows' neighbour softmax, computed once
    cycler: _Cycler
    target: torch.Tensor | None = None  # the training rows' one, when every batch is all rows


@dataclass
class _Data:
    """Everything the loop reads, on the fit's device."""

    objects: torch.Tensor  # standardised THINGS features (m × p)
    train_pairs: torch.Tensor  # flat pair indices of the training triplets
    monitor_pairs: torch.Tensor  # ... of the validation triplets (else the training ones)
    triplets: _Cycler
    contrast: _Contrast | None


def _prepare(
    objects: np.ndarray,
    triplets: np.ndarray,
    settings: FitSettings,
    contrast: np.ndarray | None,
    contrast_teacher: np.ndarray | None,
    val_triplets: np.ndarray | None,
    device: torch.device,
    generator: torch.Generator,
) -> _Data:
    """Tensors, batching, and the data the objective is monitored on.

    With ``val_triplets`` a seeded slice of the contrast rows (:data:`VAL_CONTRAST_SHARE`, at
    most one batch) is held out of training; without them the objective is monitored on all
    training triplets and a fixed slice of the training contrast rows.
    """
    dtype = torch.float32
    m = objects.shape[0]
    x = torch.as_tensor(objects, dtype=dtype, device=device)
    train_pairs = losses.pair_indices(torch.as_tensor(triplets), m).to(device)
    monitor_pairs = (
        losses.pair_indices(torch.as_tensor(val_triplets), m).to(device)
        if val_triplets is not None
        else train_pairs
    )
    local = None
    if contrast is not None:  # given exactly when the settings need it (the estimator decides)
        student_all = torch.as_tensor(contrast, dtype=dtype, device=device)
        teacher_all = torch.nn.functional.normalize(
            torch.as_tensor(contrast_teacher, dtype=dtype, device=device), dim=1
        )
        n_c = len(student_all)
        n_monitor = min(settings.contrast_batch_size, int(VAL_CONTRAST_SHARE * n_c))
        order = torch.randperm(n_c, generator=generator).to(device)
        if n_monitor < 2:  # too few rows to spare: monitor on training rows
            monitor_rows, train_rows = order[: min(n_c, settings.contrast_batch_size)], order
        elif val_triplets is not None:
            monitor_rows, train_rows = order[:n_monitor], order[n_monitor:]
        else:
            monitor_rows, train_rows = order[:n_monitor], order
        cycler = _Cycler(len(train_rows), settings.contrast_batch_size, generator, device)
        teacher, monitor_teacher = teacher_all[train_rows], teacher_all[monitor_rows]
        with torch.no_grad():
            monitor_target = losses.local_target(monitor_teacher, settings.tau)
            target = losses.local_target(teacher, settings.tau) if cycler.per_pass == 1 else None
        local = _Contrast(
            student_all[train_rows], teacher, student_all[monitor_rows], monitor_teacher,
            monitor_target, cycler, target,
        )  # fmt: skip
    cycler = _Cycler(len(train_pairs), settings.triplet_batch_size, generator, device)
    return _Data(x, train_pairs, monitor_pairs, cycler, local)


def _start(
    data: _Data,
    settings: FitSettings,
    init: tuple[np.ndarray, np.ndarray | None] | None,
    device: torch.device,
    generator: torch.Generator,
) -> tuple[torch.nn.Parameter, torch.nn.Parameter | None, float]:
    """The starting map: ``init`` (a warm start), or ``β I`` and ``b = 0``.

    β is ``init_scale``, or by default the scale of lowest training global loss
    (:func:`identity_scale`, on a seeded subset of the training triplets).
    """
    dtype = torch.float32
    p = data.objects.shape[1]
    if init is not None:
        scale = float(np.trace(init[0]) / p)
    elif settings.init_scale is None:
        sample = torch.randperm(len(data.train_pairs), generator=generator)
        sample = sample[:_SCALE_SEARCH_TRIPLETS].to(device)
        scale = identity_scale(data.objects, data.train_pairs[sample])
    else:
        scale = settings.init_scale
    start_w = torch.eye(p, dtype=dtype) * scale if init is None else torch.as_tensor(init[0])
    weights = torch.nn.Parameter(start_w.to(device=device, dtype=dtype).clone())
    bias = None
    if settings.bias:
        start_b = (
            torch.as_tensor(init[1])
            if init is not None and init[1] is not None
            else torch.zeros(p, dtype=dtype)
        )
        bias = torch.nn.Parameter(start_b.to(device=device, dtype=dtype).clone())
    return weights, bias, scale


def _affine(x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x W + b``: the map applied to standardised rows (objects and contrast alike)."""
    return x @ weights if bias is None else x @ weights + bias


def _evaluate(objects, weights, bias, pairs) -> tuple[float, float]:
    """Global loss and odd-one-out accuracy (ties wrong) on all triplets in ``pairs``."""
    with torch.no_grad():
        similarity = losses.gram(_affine(objects, weights, bias))
        total_loss, total_correct = 0.0, 0
        for start in range(0, len(pairs), _EVAL_CHUNK):
            logits = losses.triplet_logits(similarity, pairs[start : start + _EVAL_CHUNK])
            total_loss += float(losses.triplet_cross_entropy(logits).sum())
            total_correct += int(answered_correctly(logits).sum())
    return total_loss / len(pairs), total_correct / len(pairs)


def identity_scale(objects: torch.Tensor, pairs: torch.Tensor) -> float:
    """The β whose map ``β I`` minimises the global loss on ``pairs`` (a 1-d convex search).

    The logits of ``β I`` are ``t · l`` with ``t = β²`` and ``l`` the triplet dot products of
    the standardised features, so the loss is convex in ``t``; bisection on its derivative
    ``mean(softmax(t l) · l − l_0)`` over ``log t`` finds the minimum. When the features do
    not predict the choices (derivative ≥ 0 at 0) the scale that gives logits of unit spread.
    """
    with torch.no_grad():
        logits = losses.triplet_logits(losses.gram(objects.double()), pairs)

        def slope(t: float) -> float:
            p = torch.softmax(t * logits, dim=1)
            return float(((p * logits).sum(1) - logits[:, 0]).mean())

        unit = 1.0 / max(float(logits.std()), 1e-12)
        if slope(0.0) >= 0:
            return math.sqrt(unit)
        low, high = math.log(unit) - 20.0, math.log(unit) + 20.0
        if slope(math.exp(high)) < 0:  # separable: take the largest scale searched
            return math.sqrt(math.exp(high))
        for _ in range(40):
            mid = 0.5 * (low + high)
            low, high = (mid, high) if slope(math.exp(mid)) < 0 else (low, mid)
        return math.sqrt(math.exp(0.5 * (low + high)))


def _check(
    data: _Data, weights: torch.Tensor, bias: torch.Tensor | None, settings: FitSettings
) -> dict[str, float]:
    """The fitted objective on the monitoring data (held out when given), and its parts."""
    record = {}
    record["val_loss"], record["val_acc"] = _evaluate(
        data.objects, weights, bias, data.monitor_pairs
    )
    objective = (1 - settings.alpha) * record["val_loss"]
    with torch.no_grad():
        if data.contrast is not None:
            student = _affine(data.contrast.monitor_student, weights, bias)
            record["val_local"] = float(
                losses.local_divergence(
                    data.contrast.monitor_teacher, student, settings.tau,
                    data.contrast.monitor_target,
                )
            )  # fmt: skip
            objective += settings.alpha * record["val_local"]
        objective += settings.lmbda * float(losses.PENALTIES[settings.regularizer](weights))
    record["objective"] = objective
    return record


def _objective(
    data: _Data, weights: torch.Tensor, bias: torch.Tensor | None, settings: FitSettings
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training objective on the next batches, and its parts for the record."""
    batch = data.triplets.next()
    pairs = data.train_pairs if batch is None else data.train_pairs[batch]
    logits = losses.triplet_logits(losses.gram(_affine(data.objects, weights, bias)), pairs)
    global_term = losses.triplet_cross_entropy(logits).mean()
    local_term = None
    if data.contrast is not None:
        c = data.contrast
        rows = c.cycler.next()
        # The bias learns from the triplets only: through the local term a large common
        # offset would flatten the student's neighbour softmax (all cosines → 1), which
        # lowers the local loss without keeping any neighbourhood.
        student = _affine(
            c.student if rows is None else c.student[rows],
            weights,
            bias if bias is None or BIAS_LEARNS_FROM_LOCAL else bias.detach(),
        )
        if rows is None:
            local_term = losses.local_loss(c.teacher, student, settings.tau, c.target)
        else:
            local_term = losses.local_loss(c.teacher[rows], student, settings.tau)
    penalty = losses.PENALTIES[settings.regularizer](weights)
    loss = losses.glocal_loss(global_term, local_term, penalty, settings.alpha, settings.lmbda)
    parts = {
        "triplets": len(pairs),
        "loss": float(loss.detach()),
        "global_loss": float(global_term.detach()),
        "local_loss": float(local_term.detach()) if local_term is not None else 0.0,
        "penalty": float(penalty.detach()),
        "correct": int(answered_correctly(logits.detach()).sum()),
    }
    return loss, parts


@dataclass(frozen=True)
class Decision:
    """What a check decided: keep its parameters as the best, go back to the best, stop."""

    new_best: bool
    restore: bool
    stop: bool


class StoppingRule:
    """Early stopping on the monitored objective, backtracking when a step size is too large.

    A check passes when it beats the reference (the last passing check; the start at first)
    by the relative ``tol``. A failing check (after ``min_steps``) halves the step size, and
    when it is worse than the best check so far the fit goes back to the best parameters
    (with a fresh optimiser state) before it goes on: a step size that overshoots is retried
    smaller from where the fit was best, never continued from where it overshot.

    Until a check improves on the start at all, failing checks are not counted as stale:
    smaller steps are tried first, and only when :data:`MAX_HALVINGS_AT_START` halvings have
    not improved on the start does the fit end there (``"no_improvement"``: it returns its
    start, which no step size tried could improve). After that, ``patience`` failing checks in
    a row end the fit (``"converged"``). A check whose objective is not finite is a failing
    check.

    Every term of the monitored objective is non-negative, so a start at 0 or below (within
    float32 rounding: α = 1 with every neighbourhood kept) cannot be beaten; the fit then ends
    before its first step (``done_at_start``), as ``"no_improvement"``.
    """

    def __init__(self, start: float, settings: FitSettings):
        self.settings = settings
        self.best, self.best_step = start, 0
        self.reference, self.stale = start, 0
        self.halvings_at_start = 0
        self.lr_scale = 1.0
        self.done_at_start = settings.early_stopping and start <= 0.0
        self.stop_reason = "no_improvement" if self.done_at_start else "max_steps"

    def update(self, objective: float, step: int) -> Decision:
        """Record the check at ``step`` and decide."""
        s = self.settings
        finite = math.isfinite(objective)
        new_best = finite and objective < self.best
        if new_best:
            self.best, self.best_step = objective, step
        if finite and objective < self.reference * (1 - s.tol):
            self.reference, self.stale = objective, 0
            return Decision(new_best, restore=False, stop=False)
        if step < s.min_steps:
            return Decision(new_best, restore=False, stop=False)
        self.lr_scale *= 0.5
        if self.best_step > 0:
            self.stale += 1
            done, reason = self.stale >= s.patience, "converged"
        else:
            self.halvings_at_start += 1
            done, reason = self.halvings_at_start >= MAX_HALVINGS_AT_START, "no_improvement"
        stop = s.early_stopping and done
        if stop:
            self.stop_reason = reason
        return Decision(new_best, restore=not new_best and not stop, stop=stop)


def fit_affine(
    objects: np.ndarray,
    triplets: np.ndarray,
    settings: FitSettings,
    contrast: np.ndarray | None = None,
    contrast_teacher: np.ndarray | None = None,
    val_triplets: np.ndarray | None = None,
    init: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> FitResult:
    """Minimise ``(1 − α) L_global + α L_local + λ penalty`` over an affine map.

    ``objects`` are the standardised THINGS features (m × p); ``contrast`` the contrast
    features the student sees (standardised, or raw with ``student="raw"``),
    ``contrast_teacher`` the original contrast features whose cosine neighbourhoods are the
    target (both given exactly when ``settings.needs_contrast``, both None otherwise);
    ``val_triplets`` (same objects) the held-out triplets the objective is monitored on.
    ``init`` = (W, b) starts the fit from those parameters (a warm start) instead of ``β I``
    and 0.
    """
    device = resolve_device(settings.device)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    data = _prepare(
        objects, triplets, settings, contrast, contrast_teacher, val_triplets, device, generator
    )
    weights, bias, scale = _start(data, settings, init, device, generator)
    params = [weights] if bias is None else [weights, bias]
    options: dict[str, Any] = {"lr": settings.lr}
    if settings.optimizer == "sgd":
        options["momentum"] = 0.9
    optimizer = OPTIMIZERS[settings.optimizer](params, **options)

    first = {"step": 0, "epoch": 0.0, "lr": 0.0, **_check(data, weights, bias, settings),
             "seconds": 0.0}  # fmt: skip
    _check_start(first["objective"], settings)
    history: list[dict] = [first]
    rule = StoppingRule(first["objective"], settings)
    kept = _snapshot(weights, bias)
    sums = _window()
    bar = tqdm(total=settings.max_steps, desc="fit", unit="step", disable=not settings.verbose,
               leave=False, file=sys.stderr)  # fmt: skip
    start_time = time.perf_counter()
    step = 0
    while step < settings.max_steps and not rule.done_at_start:
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * rule.lr_scale
        loss, parts = _objective(data, weights, bias, settings)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        bar.update(1)
        sums["steps"] += 1
        for name, value in parts.items():
            sums[name] += value
        if step % settings.eval_every and step < settings.max_steps:
            continue
        k = sums["steps"]
        record = {
            "step": step,
            "epoch": step / data.triplets.per_pass,  # passes over the training triplets
            "lr": optimizer.param_groups[0]["lr"],
            **{name: sums[name] / k for name in ("loss", "global_loss", "local_loss", "penalty")},
            "train_acc": sums["correct"] / sums["triplets"],
            **_check(data, weights, bias, settings),
            "bias_norm": float(bias.detach().norm()) if bias is not None else 0.0,
        }
        sums = _window()
        decision = rule.update(record["objective"], step)
        record["restored"] = decision.restore
        record["seconds"] = time.perf_counter() - start_time
        history.append(record)
        if decision.new_best:
            kept = _snapshot(weights, bias)
        elif decision.restore:
            _restore(weights, bias, kept)
            optimizer.state.clear()  # Adam's moments belong to the path that overshot
        bar.set_postfix({"objective": f"{record['objective']:.4f}",
                         "val_acc": f"{record['val_acc']:.4f}"})  # fmt: skip
        if decision.stop:
            break
    bar.close()
    return FitResult(
        weights=kept[0],
        bias=kept[1],
        history=history,
        best_step=rule.best_step,
        n_steps=step,
        stop_reason=rule.stop_reason,
        init_scale=float(scale),
        device=str(device),
    )


def _check_start(objective: float, settings: FitSettings) -> None:
    """A fit cannot start from a non-finite objective: no step size can repair that."""
    if math.isfinite(objective):
        return
    scale = "" if settings.init_scale is None else f", init_scale ({settings.init_scale:g})"
    raise FitDivergedError(
        f"the monitored objective is {objective} at the start (W = β I, b = 0), before any "
        "step: the features, the contrast set or the hyper-parameters give non-finite values; "
        f"check the inputs for huge values and that tau ({settings.tau:g}), lmbda "
        f"({settings.lmbda:g}){scale} are of a sensible size"
    )


def _window() -> dict:
    return dict.fromkeys(
        ("steps", "triplets", "loss", "global_loss", "local_loss", "penalty", "correct"), 0
    )


def _restore(weights, bias, kept: tuple[np.ndarray, np.ndarray | None]) -> None:
    with torch.no_grad():
        weights.copy_(torch.as_tensor(kept[0]))
        if bias is not None and kept[1] is not None:
            bias.copy_(torch.as_tensor(kept[1]))


def _snapshot(weights, bias) -> tuple[np.ndarray, np.ndarray | None]:
    w = weights.detach().cpu().numpy().copy()
    b = bias.detach().cpu().numpy().copy() if bias is not None else None
    return w, b
