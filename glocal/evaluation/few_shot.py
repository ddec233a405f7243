"""Few-shot classification: episodes, cross-validated logistic regression, nearest centroids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from glocal._device import resolve_device, single_thread_if
from glocal._params import verbose_level
from glocal.errors import GlocalError
from glocal.evaluation._checks import check_labels, show_label
from glocal.evaluation.intervals import mean_interval
from glocal.io import check_feature_matrix

#: The inverse L2 strengths searched by cross-validation (the official code's 1e-4 … 1e6).
DEFAULT_CS: tuple[float, ...] = tuple(float(c) for c in np.logspace(-4, 6, 11))
CLASSIFIERS = ("logreg", "centroid")
_SMALL_PROBLEM = 1 << 22  # multiply-adds per logit evaluation below which one CPU thread wins
Classifier = Literal["logreg", "centroid"]
#: L-BFGS iterations allowed per fit; a fit stops as soon as its largest gradient entry falls
#: below ``TOL``. The official code's scikit-learn ``max_iter=500`` is not always enough: on
#: 5- and 10-shot problems of 20-100 classes with 768-1024 well-scaled features every C of the
#: grid met the tolerance within 50 iterations, but on raw features of norm ~30 (random-weight
#: models, 100 classes, 2-3 shots) the weakly penalised fits (C = 10 ... 1e5) needed up to
#: 1000. The limit is 5000, and every episode reports whether its final fit ``converged``.
MAX_ITER = 5000
#: Gradient tolerance of each fit (the objective is scaled as scikit-learn's: mean loss). Not
#: scikit-learn's default 1e-4, which the official code kept: on small separable support sets
#: the weakly penalised fits then stop early, and the C that cross-validation picks depends on
#: where they stopped. On 40 two-shot episodes of 3-7 Gaussian classes in 8-d the C chosen
#: agreed with scikit-learn's ``LogisticRegression`` at tol 1e-12 on 28 episodes at 1e-4, 38
#: at 1e-6 and 39 at 1e-8 and at 1e-10 (the choice is stable from 1e-8), at 3.5 times the
#: cost of 1e-4 (``tests/test_downstream.py`` checks the protocol against scikit-learn).
TOL = 1e-8
#: Correction pairs L-BFGS keeps (scikit-learn's ``lbfgs`` solver keeps 10, SciPy's default).
#: Each iteration reads all of them: with 20 the updates cost more than the objective on these
#: small problems. On 60 real support sets (MiniLM features; original, naive and gLocal; 2 and
#: 5 shots) 10 instead of 20 cut the time by a fifth and chose the same C in all 60.
HISTORY = 10
#: Protocol of 1-shot logistic regression: the official code chooses C by cross-validation on
#: the support set, which one example per class cannot split, so it runs no 1-shot logistic
#: regression ("skip"); "fixed_C" fits it with ``fallback_C`` and labels the rows an addition.
ONE_SHOT = ("skip", "fixed_C")


def sample_episode(
    y: np.ndarray,
    shots: int,
    rng: np.random.Generator,
    n_test_per_class: int | None = None,
    y_test: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw support indices (``shots`` per class of ``y``) and test indices.

    Without ``y_test`` the test items come from the same pool (disjoint from the support);
    with it they are indices into ``y_test``. ``n_test_per_class=None`` takes every
    remaining item. Classes are visited in sorted order, so a seed fixes the episode.
    """
    support, test = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        support.append(members[:shots])
        pool = members[shots:] if y_test is None else rng.permutation(np.flatnonzero(y_test == c))
        test.append(pool if n_test_per_class is None else pool[:n_test_per_class])
    return np.concatenate(support), np.concatenate(test)


def _logits(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(F, n, K) logits of F stacked models; W is (d, F·K) so that one GEMM serves all F."""
    folds, n_classes = b.shape
    return (X @ W).view(len(X), folds, n_classes).transpose(0, 1) + b[:, None, :]


def _softmax_objective(
    X: torch.Tensor,
    W: torch.Tensor,
    b: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    lam: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Objective of :func:`_fit_softmax` and its gradients in W and b, without autograd.

    Loss  Σ_f Σ_i weights[f, i] · CE(x_i W_f + b_f, y_i) + Σ_f lam[f] ‖W_f‖²; the gradient of
    the cross-entropy in the logits is softmax − one-hot. Written out because these problems
    are tiny: autograd's bookkeeping cost about as much as the arithmetic (twice the time of an
    L-BFGS fit on a 29-class, 5-shot episode).
    """
    folds, n_classes = b.shape
    n, dim = X.shape
    index = y.expand(folds, -1).unsqueeze(-1)
    log_p = torch.log_softmax(_logits(X, W, b), dim=-1)
    per_fold = W.view(dim, folds, n_classes)
    loss = (lam * (per_fold * per_fold).sum(dim=(0, 2))).sum() - (
        weights * log_p.gather(-1, index).squeeze(-1)
    ).sum()
    d_logits = log_p.exp_()
    d_logits.scatter_add_(-1, index, torch.full_like(index, -1, dtype=d_logits.dtype))
    d_logits.mul_(weights.unsqueeze(-1))
    grad_W = X.T @ d_logits.transpose(0, 1).reshape(n, folds * n_classes)
    grad_W.add_((2.0 * lam.view(1, folds, 1) * per_fold).view(dim, folds * n_classes))
    return loss, grad_W, d_logits.sum(dim=1)


def _fit_softmax(
    X: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    C: float,
    n_classes: int,
    init: tuple[torch.Tensor, torch.Tensor] | None,
    max_iter: int,
    tol: float,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """L2-penalised multinomial logistic regression for F problems sharing the rows of X.

    Problem f minimises  Σ_i weights[f, i] · CE(x_i W_f + b_f, y_i) + ‖W_f‖² / (2 C n_f),
    with rows of ``weights`` summing to 1 over the n_f rows it trains on; this is scikit-learn's
    ``LogisticRegression(C)`` objective divided by C · n_f (intercept unpenalised). The F
    problems are independent, so one L-BFGS run on their sum solves each of them. Returns
    (W, b, converged): converged is False when L-BFGS used all ``max_iter`` iterations.
    """
    folds, dim = len(weights), X.shape[1]
    lam = 1.0 / (2.0 * C * (weights > 0).sum(dim=1).to(X.dtype))
    if init is None:
        W = torch.zeros(dim, folds * n_classes, dtype=X.dtype, device=X.device)
        b = torch.zeros(folds, n_classes, dtype=X.dtype, device=X.device)
    else:
        W, b = init[0].clone(), init[1].clone()
    # L-BFGS runs on (W, c·b): the intercepts' curvature is about 1/K, the weights' at least
    # 2·lam, thousands of times more for the smallest Cs; c ≤ 1 evens them out, and a gradient
    # below tol in c·b is one below c·tol in b
    scale = (1.0 / (2.0 * n_classes * lam)).sqrt().clamp(max=1.0)[:, None]
    b_scaled = b * scale
    opt = torch.optim.LBFGS(
        [W, b_scaled], max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-12,
        history_size=HISTORY, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> torch.Tensor:
        loss, W.grad, grad_b = _softmax_objective(X, W, b_scaled / scale, y, weights, lam)
        b_scaled.grad = grad_b / scale
        return loss

    small = X.device.type == "cpu" and X.numel() * folds * n_classes < _SMALL_PROBLEM
    with single_thread_if(small), torch.no_grad():
        opt.step(closure)
    iterations = int(opt.state[opt._params[0]].get("n_iter", 0))
    return W, b_scaled / scale, iterations < max_iter


def _predict_softmax(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _logits(X, W, b).argmax(dim=-1)


def _stratified_folds(y: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    fold = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        fold[members] = np.arange(len(members)) % n_folds
    return fold


def logistic_regression_cv(
    X_support: np.ndarray,
    y_support: np.ndarray,
    X_query: np.ndarray,
    Cs: Sequence[float] = DEFAULT_CS,
    cv_folds: int = 5,
    fallback_C: float = 1.0,
    max_iter: int = MAX_ITER,
    tol: float = TOL,
    device: str = "cpu",
    seed: int = 0,
    info: dict[str, Any] | None = None,
) -> tuple[np.ndarray, float]:
    """Fit a multinomial logistic regression with C chosen by stratified CV; predict queries.

    The folds hold out items of every class (``min(cv_folds, smallest class)`` folds); all Cs
    run in ascending order with warm starts and all folds are solved at once. The C with the
    best held-out accuracy wins (ties go to the smallest C, the strongest penalty). With fewer
    than 2 items in some class no stratified split exists and ``fallback_C`` is used. When
    there are fewer items than features the problem is solved, exactly, in the span of the
    support rows (the L2 optimum lies there), which makes it cheap. Returns (labels, C); a dict
    passed as ``info`` receives ``converged`` (whether the final fit met the gradient tolerance
    within ``max_iter`` L-BFGS iterations).

    Parameters
    ----------
    X_support : array-like of shape (n, p)
        Features of the support (training) items.
    y_support : array-like of shape (n,)
        Their labels.
    X_query : array-like of shape (m, p)
        Features of the items to classify.
    Cs : sequence of float, default=DEFAULT_CS
        Candidate inverse L2 strengths, all positive (default: the 11 powers of ten from 1e-4
        to 1e6). A single C is used as is, without cross-validation.
    cv_folds : int, default=5
        Most folds of the cross-validation.
    fallback_C : float, default=1.0
        The C used when fewer than 2 folds are possible (some class has fewer than 2 items, or
        ``cv_folds`` is below 2) and ``Cs`` holds more than one value.
    max_iter : int, default=MAX_ITER
        L-BFGS iterations allowed per fit (``MAX_ITER`` = 5000).
    tol : float, default=TOL
        A fit stops when its largest gradient entry falls below ``tol`` (``TOL`` = 1e-8).
    device : str, default="cpu"
        Torch device of the fits (``"auto"``: CUDA when present); they run in float64.
    seed : int, default=0
        Seeds the assignment of the support items to folds.
    info : dict or None, default=None
        A dict that receives ``converged``.

    Returns
    -------
    labels : ndarray of shape (m,)
        The predicted label of each query (one of ``y_support``'s labels).
    C : float
        The chosen C, with which the final fit on all support items ran.

    Raises
    ------
    GlocalError
        For an empty ``Cs`` or one with a C that is not positive, or a device that is not
        available.
    """
    classes, y_codes = np.unique(y_support, return_inverse=True)
    Cs = sorted(float(c) for c in Cs)
    if not Cs or min(Cs) <= 0:
        raise GlocalError(f"Cs: expected positive inverse penalty strengths, got {Cs}")
    dev = resolve_device(device)
    n_classes = len(classes)
    n_folds = min(cv_folds, int(np.bincount(y_codes).min()))
    n, dim = np.shape(X_support)
    work = n * min(n, dim) * n_classes * max(n_folds, 1)
    with single_thread_if(dev.type == "cpu" and work < _SMALL_PROBLEM):
        xs = torch.as_tensor(np.asarray(X_support), dtype=torch.float64, device=dev)
        xq = torch.as_tensor(np.asarray(X_query), dtype=torch.float64, device=dev)
        if n < dim:  # the L2 optimum lies in the span of the support rows: solve there
            basis = torch.linalg.qr(xs.T).Q
            xs, xq = xs @ basis, xq @ basis
        ys = torch.as_tensor(y_codes, device=dev)
        if n_folds < 2 or len(Cs) == 1:
            best_C = Cs[0] if len(Cs) == 1 else float(fallback_C)
        else:
            fold = _stratified_folds(y_codes, n_folds, np.random.default_rng(seed))
            train = torch.as_tensor(fold[None, :] != np.arange(n_folds)[:, None], device=dev)
            weights = train.to(xs.dtype) / train.sum(dim=1, keepdim=True)
            held_out = ~train
            accuracy, params = [], None
            for C in Cs:
                *fitted, _ = _fit_softmax(xs, ys, weights, C, n_classes, params, max_iter, tol)
                params = (fitted[0], fitted[1])
                correct = (_predict_softmax(xs, *params) == ys) & held_out
                accuracy.append(int(correct.sum()))
            best_C = Cs[int(np.argmax(accuracy))]
        ones = torch.full((1, n), 1.0 / n, dtype=xs.dtype, device=dev)
        W, b, converged = _fit_softmax(xs, ys, ones, best_C, n_classes, None, max_iter, tol)
        pred = _predict_softmax(xq, W, b)[0].cpu().numpy()
    if info is not None:
        info["converged"] = converged
    return classes[pred], best_C


def nearest_centroid(
    X_support: np.ndarray,
    y_support: np.ndarray,
    X_query: np.ndarray,
    metric: Literal["cosine", "euclidean"] = "cosine",
) -> np.ndarray:
    """Predict each query's class as that of the nearest class mean of the support set.

    ``cosine``: rows are unit-normalised, averaged per class, and the query goes to the
    centroid of highest cosine; ``euclidean``: plain means and Euclidean distance.

    Parameters
    ----------
    X_support : array-like of shape (n, p)
        Features of the support items.
    y_support : array-like of shape (n,)
        Their labels.
    X_query : array-like of shape (m, p)
        Features of the items to classify.
    metric : {"cosine", "euclidean"}, default="cosine"
        How queries are compared with the centroids.

    Returns
    -------
    ndarray of shape (m,)
        The predicted label of each query (one of ``y_support``'s labels).

    Raises
    ------
    GlocalError
        For a ``metric`` other than ``"cosine"`` or ``"euclidean"``.
    """
    classes, codes = np.unique(y_support, return_inverse=True)
    Xs = np.asarray(X_support, dtype=np.float64)
    Xq = np.asarray(X_query, dtype=np.float64)
    if metric == "cosine":
        Xs = Xs / np.linalg.norm(Xs, axis=1, keepdims=True)
        Xq = Xq / np.linalg.norm(Xq, axis=1, keepdims=True)
    elif metric != "euclidean":
        raise GlocalError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    centroids = np.zeros((len(classes), Xs.shape[1]))
    np.add.at(centroids, codes, Xs)
    centroids /= np.bincount(codes)[:, None]
    if metric == "cosine":
        score = Xq @ (centroids / np.linalg.norm(centroids, axis=1, keepdims=True)).T
    else:
        score = 2.0 * Xq @ centroids.T - (centroids * centroids).sum(axis=1)
    return classes[score.argmax(axis=1)]


def fixed_test_set(
    y_test: np.ndarray,
    n_test_per_class: int | None,
    seed: int,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of one test set for every episode: up to ``n_test_per_class`` items of each
    class (of each group in ``groups``, e.g. the subclasses of a BREEDS superclass), a seeded
    choice; all items of a class (group) that has fewer. None takes every item."""
    keys = np.asarray(y_test if groups is None else groups)
    if len(keys) != len(y_test):
        raise GlocalError(f"test_groups has {len(keys)} entries for {len(y_test)} test items")
    if n_test_per_class is None:
        return np.arange(len(y_test))
    rng = np.random.default_rng([seed, 0x7E57])
    chosen = []
    for key in np.unique(keys):
        members = rng.permutation(np.flatnonzero(keys == key))
        chosen.append(np.sort(members[:n_test_per_class]))
    return np.concatenate(chosen)


def few_shot(
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    shots: Sequence[int] = (1, 5, 10),
    n_test_per_class: int | None = None,
    n_repeats: int = 10,
    classifier: Classifier | Sequence[Classifier] = "logreg",
    Cs: Sequence[float] = DEFAULT_CS,
    cv_folds: int = 5,
    fallback_C: float = 1.0,
    max_iter: int = MAX_ITER,
    centroid_metric: Literal["cosine", "euclidean"] = "cosine",
    device: str = "cpu",
    seed: int = 0,
    verbose: int = 0,
    fixed_test: bool = False,
    test_groups: np.ndarray | None = None,
    one_shot: str = "skip",
    progress: bool | None = None,
    per_class: bool = False,
) -> pd.DataFrame:
    """Few-shot classification (the gLocal paper's protocol); one row per episode and classifier.

    For every n in ``shots`` and repeat r, ``n`` support items per class are drawn from
    (X, y) with ``np.random.default_rng([seed, n, r])``, so every representation of the same
    items sees the same episodes. Test items are ``n_test_per_class`` per class, drawn from
    (X_test, y_test) or, without them, from the rest of the pool (None: all of them).
    ``fixed_test`` (with X_test): the official protocol's one test set for every episode, up to
    ``n_test_per_class`` items per class or per group of ``test_groups`` (see
    :func:`fixed_test_set`). ``logreg`` is :func:`logistic_regression_cv` (C chosen on the
    support set by cross-validation over ``Cs``), ``centroid`` :func:`nearest_centroid`. With one
    shot no cross-validation is possible: ``one_shot="skip"`` leaves those logistic regressions
    out, as the official code does; ``"fixed_C"`` fits them with ``fallback_C`` and marks them
    in the ``protocol`` column as an addition. ``converged`` says whether the final logistic
    regression met its gradient tolerance. Summarise with :func:`summarize_few_shot`.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        The pool of features that support items (and, without ``X_test``, test items) are
        drawn from.
    y : ndarray of shape (n,)
        Class label of each row of ``X``: at least 2 classes, each with at least ``max(shots)``
        items, plus ``n_test_per_class`` (1 when None) when the test items come from the pool.
    X_test : ndarray of shape (n_test, p) or None, default=None
        A separate test pool, with the features of ``X``.
    y_test : ndarray of shape (n_test,) or None, default=None
        Class label of each row of ``X_test``: only classes of ``y``, each of them present.
        Give ``X_test`` and ``y_test`` together or neither.
    shots : sequence of int, default=(1, 5, 10)
        Support items per class; each value gets ``n_repeats`` episodes.
    n_test_per_class : int or None, default=None
        Test items per class in each episode (None: all available). Without ``fixed_test``, a
        separate test pool needs that many items of every class.
    n_repeats : int, default=10
        Episodes per value of ``shots``.
    classifier : {"logreg", "centroid"} or sequence of them, default="logreg"
        The classifiers run on every episode.
    Cs : sequence of float, default=DEFAULT_CS
        Inverse L2 strengths the logistic regression chooses from
        (see :func:`logistic_regression_cv`).
    cv_folds : int, default=5
        Most folds of that cross-validation.
    fallback_C : float, default=1.0
        The C of a logistic regression that cannot cross-validate (one support item per class,
        or ``cv_folds`` below 2), as in the 1-shot episodes with ``one_shot="fixed_C"``.
    max_iter : int, default=MAX_ITER
        L-BFGS iterations allowed per logistic-regression fit.
    centroid_metric : {"cosine", "euclidean"}, default="cosine"
        Metric of :func:`nearest_centroid`.
    device : str, default="cpu"
        Torch device of the logistic regressions.
    seed : int, default=0
        Seeds the episodes (``[seed, n, r]``), the cross-validation folds of repeat r
        (``seed + r``) and the fixed test set.
    verbose : int, default=0
        0: quiet; 1 or more: a progress bar over episodes.
    fixed_test : bool, default=False
        Test every episode on one test set drawn once from ``X_test`` (needs ``X_test``).
    test_groups : ndarray of shape (n_test,) or None, default=None
        With ``fixed_test``: the group of each item of ``y_test``; the fixed test set then takes
        up to ``n_test_per_class`` items per group instead of per class.
    one_shot : {"skip", "fixed_C"}, default="skip"
        Protocol of 1-shot logistic regression (see above).
    progress : bool or None, default=None
        Deprecated name of ``verbose`` (``True`` is 1): accepted for one release, with a
        :class:`FutureWarning`.
    per_class : bool, default=False
        One row per episode, classifier and class instead: ``class``, the accuracy on that
        class's test items and their number ``n_test`` (an episode's accuracy is the
        ``n_test``-weighted mean of its rows). For intervals over classes
        (:func:`glocal.evaluation.intervals.cluster_interval`).

    Returns
    -------
    pandas.DataFrame
        One row per episode and classifier, with columns ``classifier``, ``shots``,
        ``repeat``, ``accuracy``, ``C`` (the chosen C; NaN for ``centroid``), ``n_classes``,
        ``n_test``, ``converged`` (always True for ``centroid``) and ``protocol``
        (``"official"`` or a description of the addition); with ``per_class`` also ``class``.

    Raises
    ------
    GlocalError
        For a feature matrix that is not a finite, real 2-D array, label vectors that are not
        1-D or do not match their rows, an unknown ``classifier`` or ``one_shot``, ``shots``
        that are not positive, ``n_repeats`` below 1, ``n_test_per_class`` below 1, only one of
        ``X_test`` and ``y_test``, ``fixed_test`` without them, fewer than 2 classes, a class
        with too few items, a test pool with other features or other classes or too few test
        items per class, ``test_groups`` of another length than ``y_test``, or invalid ``Cs``
        or ``device``.
    """
    verbose = verbose_level(verbose, progress, "few_shot")
    X = check_feature_matrix(X, "X")
    y = check_labels(y, len(X), "y")
    classifiers = [classifier] if isinstance(classifier, str) else list(classifier)
    unknown = [c for c in classifiers if c not in CLASSIFIERS]
    if unknown or not classifiers:
        raise GlocalError(f"classifier: unknown {unknown}; choose from {list(CLASSIFIERS)}")
    if one_shot not in ONE_SHOT:
        raise GlocalError(f"one_shot must be one of {ONE_SHOT}, got {one_shot!r}")
    shots = [int(n) for n in shots]
    if not shots or min(shots) < 1:
        raise GlocalError(f"shots must be positive integers, got {shots}")
    if n_repeats < 1:
        raise GlocalError(f"n_repeats must be at least 1, got {n_repeats}")
    if n_test_per_class is not None and n_test_per_class < 1:
        raise GlocalError(f"n_test_per_class must be positive or None, got {n_test_per_class}")
    if (X_test is None) != (y_test is None):
        raise GlocalError("give both X_test and y_test, or neither (to test on the pool's rest)")
    if fixed_test and X_test is None:
        raise GlocalError("fixed_test needs a separate test pool (X_test, y_test)")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise GlocalError(f"y: few-shot learning needs at least 2 classes, got {len(classes)}")
    same_pool = X_test is None
    need = max(shots) + ((n_test_per_class or 1) if same_pool else 0)
    short = [(c, int(n)) for c, n in zip(classes, counts, strict=True) if n < need]
    if short:
        c, n = short[0]
        raise GlocalError(
            f"y: class {show_label(c)!r} has {n} items but {max(shots)} shots"
            + (f" plus {n_test_per_class or 1} test items" if same_pool else "")
            + f" need {need}; {len(short)} classes are short. Lower shots or n_test_per_class, "
            "or drop those classes"
        )
    fixed = None
    if X_test is not None and y_test is not None:
        X_test = check_feature_matrix(X_test, "X_test")
        y_test = check_labels(y_test, len(X_test), "y_test")
        if X_test.shape[1] != X.shape[1]:
            raise GlocalError(f"X has {X.shape[1]} features but X_test has {X_test.shape[1]}")
        extra = sorted(set(np.unique(y_test).tolist()) - set(classes.tolist()))
        if extra:
            raise GlocalError(f"y_test has classes absent from y: {extra[:5]}; drop those rows")
        test_classes, test_counts = np.unique(y_test, return_counts=True)
        missing = sorted(set(classes.tolist()) - set(test_classes.tolist()))
        if missing:
            raise GlocalError(f"y_test lacks items of classes {missing[:5]}; each class needs some")
        if fixed_test:
            fixed = fixed_test_set(y_test, n_test_per_class, seed, test_groups)
        elif n_test_per_class is not None and test_counts.min() < n_test_per_class:
            c = test_classes[int(test_counts.argmin())]
            raise GlocalError(
                f"y_test: class {show_label(c)!r} has {int(test_counts.min())} test items, fewer "
                f"than n_test_per_class={n_test_per_class}; lower it or pass None to use all"
            )
    rows = []
    episodes = [(n, r) for n in shots for r in range(n_repeats)]
    for n, r in tqdm(episodes, desc="few-shot", disable=not verbose):
        rng = np.random.default_rng([seed, n, r])
        support, test = sample_episode(y, n, rng, n_test_per_class, y_test)
        if fixed is not None:
            test = fixed
        if X_test is None or y_test is None:
            Xq, yq = X[test], y[test]
        else:
            Xq, yq = X_test[test], y_test[test]
        for name in classifiers:
            C, converged, protocol = float("nan"), True, "official"
            if name == "logreg":
                if n == 1 and one_shot == "skip":
                    continue
                info: dict[str, Any] = {}
                pred, C = logistic_regression_cv(
                    X[support], y[support], Xq, Cs, cv_folds, fallback_C, max_iter,
                    device=device, seed=seed + r, info=info,
                )  # fmt: skip
                converged = bool(info.get("converged", True))
                if n == 1:
                    protocol = f"addition: 1-shot, C fixed at {fallback_C:g} (no CV possible)"
            else:
                pred = nearest_centroid(X[support], y[support], Xq, centroid_metric)
            episode = {"classifier": name, "shots": n, "repeat": r, "C": C,
                       "n_classes": len(classes), "converged": converged,
                       "protocol": protocol}  # fmt: skip
            hits = pred == yq
            if not per_class:
                rows.append({**episode, "accuracy": float(hits.mean()), "n_test": len(test)})
                continue
            for c in classes:
                mine = yq == c
                rows.append({**episode, "class": c, "accuracy": float(hits[mine].mean()),
                             "n_test": int(mine.sum())})  # fmt: skip
    columns = ["classifier", "shots", "repeat", *(["class"] if per_class else []), "accuracy",
               "C", "n_classes", "n_test", "converged", "protocol"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def summarize_few_shot(
    results: pd.DataFrame, confidence: float = 0.95, by: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mean accuracy and its t-based confidence interval over repeats, per group.

    ``by`` defaults to whichever of ("transform", "task", "classifier", "shots") are columns.
    The interval is mean ± t_{(1+confidence)/2, r−1} · sd / √r over the r repeats (NaN for r = 1).

    Parameters
    ----------
    results : pandas.DataFrame
        A table of :func:`few_shot` (or several, concatenated, with columns such as
        ``transform`` or ``task`` that tell them apart); it needs an ``accuracy`` column.
    confidence : float, default=0.95
        Level of the interval.
    by : sequence of str or None, default=None
        The columns that define a group (None: the default above).

    Returns
    -------
    pandas.DataFrame
        One row per group, in order of first appearance, with the ``by`` columns, ``mean``,
        ``sd``, ``n_repeats``, ``ci_low`` and ``ci_high``.

    Raises
    ------
    GlocalError
        When ``results`` has no ``accuracy`` column.
    """
    if "accuracy" not in results:
        raise GlocalError("results: expected the 'accuracy' column of few_shot()'s table")
    by = list(by or [c for c in ("transform", "task", "classifier", "shots") if c in results])
    grouped = results.groupby(by, sort=False)["accuracy"]
    summary = grouped.agg(mean="mean", sd="std", n_repeats="count").reset_index()
    bounds = [mean_interval(values.to_numpy(), confidence)[1:3] for _, values in grouped]
    summary["ci_low"] = [low for low, _ in bounds]
    summary["ci_high"] = [high for _, high in bounds]
    return summary
