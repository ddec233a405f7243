"""``GlocalTransform``: the gLocal affine map as a scikit-learn estimator.

The map is ``z = ((x − μ) / σ) W + b`` with scalar μ, σ taken over the whole THINGS feature
matrix. Files use the official release's npz layout (``weights``, optional ``bias``, scalar
``mean`` and ``std``) plus one extra key, ``glocal_metadata`` (a JSON string), that official
readers ignore.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from glocal._fit import OPTIMIZERS, FitSettings, fit_affine, needs_contrast
from glocal._fit import fit_digest as fit_digest  # re-exported: the key of cached fits
from glocal._params import (
    BOOLEAN,
    TEXT,
    Constraint,
    integer,
    interval,
    options,
    parameter_docs,
    plain,
)
from glocal.errors import GlocalError
from glocal.io import atomic_path, check_feature_matrix
from glocal.losses import PENALTIES
from glocal.scoring import odd_one_out_accuracy
from glocal.triplets import validate_triplets

METADATA_KEY = "glocal_metadata"
STUDENTS = ("standardised", "raw")

#: The paper's transforms. ``naive``: the official naive probe (no local term, no bias, W from
#: 1e-3·I shrunk toward 0 by the unsquared ``λ‖W‖_F``; the paper chose λ by object-disjoint
#: 3-fold CV over 1 … 1e-5, which ``GlocalSearchCV(GlocalTransform.preset("naive"), "naive",
#: scoring="cross_entropy")`` does; 0.1 is its choice on the quick profile); ``naive-l2``:
#: glocal's earlier variant (squared ``λ‖W‖²``, bias, the default start); ``global``: no local
#: term, W pulled toward a scaled identity; ``glocal``: global + local terms.
PRESETS: dict[str, dict[str, Any]] = {
    "naive": {
        "alpha": 0.0, "regularizer": "fro", "lmbda": 0.1, "bias": False, "init_scale": 1e-3,
    },
    "naive-l2": {"alpha": 0.0, "regularizer": "l2", "lmbda": 1e-3},
    "global": {"alpha": 0.0, "regularizer": "eye"},
    "glocal": {"alpha": 0.1, "regularizer": "eye"},
}  # fmt: skip


class GlocalTransform(TransformerMixin, BaseEstimator):
    """Learn an affine map of network features that aligns them with human triplet choices.

    The map is ``z = ((x − μ) / σ) W + b`` with scalar ``μ``, ``σ`` over the training feature
    matrix. It minimises ``(1 − α) L_global + α L_local + λ penalty(W)``: the odd-one-out
    cross-entropy of the human triplets, a contrastive term that keeps the contrast set's
    cosine neighbourhoods, and a pull of ``W`` toward a scaled identity (``eye``) or toward 0
    (``l2``, ``fro``). The equations are in DEVELOPERS.md; :meth:`preset` gives the paper's
    naive, global and gLocal transforms.

    How a fit runs. ``W`` starts at ``β I`` with ``β`` the scale of lowest training global
    loss and ``b`` at 0. Every ``eval_every`` steps the objective is measured on held-out data
    (the validation triplets and a held-out fifth of the contrast set, at most one contrast
    batch; without validation triplets, the training data). A check that fails to beat the
    last passing one by the relative ``tol`` halves the step size, and when it is worse than
    the best check so far the fit first goes back to the best parameters (a fresh optimiser
    state): a step size that overshoots is retried smaller from where the fit was best. Until
    some check improves on the start, such failures are not counted: smaller steps are tried
    first, and only when ten halvings have not improved on the start does the fit return its
    start (``stop_reason_ = "no_improvement"``). After that, ``patience`` failing checks in a
    row end the fit (``"converged"``). The parameters of the best check are kept. A fit that
    reaches ``max_steps`` has not converged (``"max_steps"``); one whose objective is not
    finite at the start raises :class:`~glocal.errors.FitDivergedError`.

    Why the rule backtracks. Adam's first steps move every entry of ``W`` by about ``lr``
    whatever the gradient's size; where the start is already close to the optimum (a large
    ``alpha``, little data, a warm start) ten such steps overshoot. The previous rule then
    counted three failing checks, kept the start and called it convergence: on MiniLM features
    an ``alpha = 0.75`` fit and fits on 1k–10k triplets returned their start exactly
    (``benchmarks/results/convergence.md``). Retried from the best point with smaller steps,
    they move (alpha 0.75: held-out accuracy 0.486 → 0.547, 10-NN overlap 0.94).

    Why the start and the bias are handled this way. With the official start (``W = 10⁻³ I``
    and ``b = 10⁻³ · 1``), scalar standardisation makes ``b`` as long as every ``x W``: the
    transformed rows share a large common direction before any step (their mean cosine jumps
    from 0.21 to 0.62 on MiniLM features), cosine gradients scale as ``1/‖z‖``, and Adam's first
    sign-like steps of size ``lr`` (ten times the initial diagonal) write that common direction
    into ``W``: the local loss rises and the neighbourhoods collapse before the global term has
    any signal. Starting at ``β I`` with ``b = 0`` keeps the features' own geometry at the
    triplets' scale. The bias learns from the triplets only: through the local term a large
    common offset would flatten the student's neighbour softmax (all cosines near 1) and lower
    that loss without keeping any neighbourhood (the official code lets it; glocal does not).

    Parameters
    ----------
    alpha : float, default=0.1
        Weight of the local contrastive term in [0, 1]; 0 gives the global transform.
    lmbda : float, default=0.1
        Strength of the penalty on W. Chosen on a development split disjoint from every test
        set the book reports (``benchmarks/bench_defaults.py``): on MiniLM features 0.1 gave
        higher held-out alignment and kept more local structure than 0.01, 1 and the earlier
        1e-3, at alpha 0 and 0.25.
    tau : float, default=0.05
        Temperature of the local term's softmax over cosine similarities.
    bias : bool, default=True
        Learn the offset b (it starts at 0; otherwise b = 0 throughout).
    regularizer : {"eye", "l2", "fro"}, default="eye"
        Penalty on W: squared distance to the nearest scaled identity, squared norm, or
        unsquared Frobenius norm (the official naive probe).
    init_scale : float or None, default=None
        W starts at ``init_scale · I``; None uses the scaled identity of lowest training global
        loss (found by a 1-d convex search).
    student : {"standardised", "raw"}, default="standardised"
        What the local term's student side transforms: the standardised contrast features (the
        map ``transform`` deploys) or the raw ones, as the official code does. On MiniLM
        features (alpha 0.25) "raw" lowered the deployed map's 10-NN overlap on held-out
        contrast words from 0.84 to 0.80 at equal accuracy (the bias is ~20 times larger
        relative to raw features, so the student tunes a different map than the one deployed).
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        The torch optimiser (SGD with momentum 0.9).
    lr : float, default=1e-3
        Initial learning rate; halved at every check that fails to improve.
    max_steps : int, default=2000
        Most optimiser steps; a fit that reaches it has not converged.
    triplet_batch_size : int or None, default=2**20
        Triplets per optimiser step; None uses all of them (full batch).
    contrast_batch_size : int, default=1024
        Contrast examples per step for the local term.
    early_stopping : bool, default=True
        End the fit after ``patience`` failing checks (otherwise run ``max_steps``).
    patience : int, default=3
        Failing checks in a row that end the fit.
    tol : float, default=1e-3
        Relative improvement over the last improving check that a check needs to pass.
    min_steps : int, default=0
        Steps before a check can fail (a burn-in for small custom starts).
    eval_every : int, default=10
        Optimiser steps between checks of the monitored objective.
    warm_start : bool, default=False
        Start a refit from the current ``weights_`` and ``bias_`` instead of ``β I`` and 0.
    device : str, default="auto"
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    seed : int, default=0
        Seeds batching, contrast sampling and torch; CPU fits are deterministic.
    verbose : int, default=0
        0: quiet; 1 or more: a progress bar over steps (the CLI's default).

    Attributes
    ----------
    weights_ : ndarray of shape (p, p)
        The learned W.
    bias_ : ndarray of shape (p,) or None
        The learned b (None without ``bias``).
    mean_, std_ : float
        The scalars that standardise the features before W.
    n_features_in_ : int
        The feature dimension p.
    history_ : list of dict
        One record per check (step 0 first): training and monitored losses, accuracies,
        learning rate and seconds.
    best_step_ : int
        The step whose parameters were kept (lowest monitored objective).
    n_steps_ : int
        Optimiser steps taken.
    stop_reason_ : str
        ``"converged"`` (the stopping rule ended a fit that improved on its start),
        ``"no_improvement"`` (no step size tried improved on the start: ``weights_`` is the
        start) or ``"max_steps"``.
    init_scale_ : float
        The β of the starting ``W = β I``.
    metadata_ : dict
        Hyper-parameters, package version and, after :meth:`save`, model and module.

    Examples
    --------
    >>> from glocal import GlocalTransform
    >>> from glocal.planted import planted_problem
    >>> problem = planted_problem(n_objects=60, n_features=8, n_dims=3, n_triplets=3000,
    ...                           n_contrast=50)
    >>> est = GlocalTransform(alpha=0.1, max_steps=50)
    >>> est.fit(problem.X, problem.triplets, contrast=problem.contrast)
    GlocalTransform(max_steps=50)
    >>> est.transform(problem.X).shape
    (60, 8)
    """

    def __init__(
        self,
        *,
        alpha: float = 0.1,
        lmbda: float = 0.1,
        tau: float = 0.05,
        bias: bool = True,
        regularizer: str = "eye",
        init_scale: float | None = None,
        student: str = "standardised",
        optimizer: str = "adam",
        lr: float = 1e-3,
        max_steps: int = 2000,
        triplet_batch_size: int | None = 1 << 20,
        contrast_batch_size: int = 1024,
        early_stopping: bool = True,
        patience: int = 3,
        tol: float = 1e-3,
        min_steps: int = 0,
        eval_every: int = 10,
        warm_start: bool = False,
        device: str = "auto",
        seed: int = 0,
        verbose: int = 0,
    ):
        self.alpha = alpha
        self.lmbda = lmbda
        self.tau = tau
        self.bias = bias
        self.regularizer = regularizer
        self.init_scale = init_scale
        self.student = student
        self.optimizer = optimizer
        self.lr = lr
        self.max_steps = max_steps
        self.triplet_batch_size = triplet_batch_size
        self.contrast_batch_size = contrast_batch_size
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.min_steps = min_steps
        self.eval_every = eval_every
        self.warm_start = warm_start
        self.device = device
        self.seed = seed
        self.verbose = verbose

    # fitted attributes (set by fit or load)
    weights_: np.ndarray
    bias_: np.ndarray | None
    mean_: float
    std_: float

    #: What each hyper-parameter may be (the names must be those of ``__init__``).
    _constraints: dict[str, Constraint] = {
        "alpha": interval(0, 1),
        "lmbda": interval(0, math.inf, closed="left"),
        "tau": interval(0, math.inf, closed="neither"),
        "bias": BOOLEAN,
        "regularizer": options(PENALTIES),
        "init_scale": interval(0, math.inf, closed="neither", allow_none=True),
        "student": options(STUDENTS),
        "optimizer": options(OPTIMIZERS),
        "lr": interval(0, math.inf, closed="neither"),
        "max_steps": integer(1),
        "triplet_batch_size": integer(1, allow_none=True),
        "contrast_batch_size": integer(2),
        "early_stopping": BOOLEAN,
        "patience": integer(1),
        "tol": interval(0, 1, closed="left"),
        "min_steps": integer(0),
        "eval_every": integer(1),
        "warm_start": BOOLEAN,
        "device": TEXT,
        "seed": integer(0),
        "verbose": integer(0),
    }

    @classmethod
    def parameter_help(cls) -> dict[str, str]:
        """One line of help per hyper-parameter, from the class docstring (for the CLI)."""
        return parameter_docs(cls.__doc__)

    def _validated(self) -> dict[str, Any]:
        """The hyper-parameters after checking each against its constraint."""
        params = self.get_params()
        for name, value in params.items():
            self._constraints[name].validate(name, value)
        return plain(params)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GlocalTransform:
        """An estimator configured as one of the paper's transforms: naive, global or glocal."""
        if name not in PRESETS:
            raise GlocalError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def needs_contrast(self) -> bool:
        """Whether :meth:`fit` needs a contrast set: the local term is on (``alpha > 0``)."""
        return needs_contrast(self.alpha)

    # fitting ---------------------------------------------------------------------------------
    def fit(
        self,
        X: np.ndarray,
        triplets: np.ndarray,
        contrast: np.ndarray | None = None,
        val_triplets: np.ndarray | None = None,
    ) -> GlocalTransform:
        """Fit the map on THINGS features ``X`` (m × p) and human triplets (n × 3).

        ``contrast`` (n_c × p) holds generic features (the paper used ImageNet) for the local
        term; it is required when ``alpha > 0`` (:attr:`needs_contrast`) and not used otherwise.
        ``val_triplets`` (on the same objects) make the stopping rule and the kept parameters
        depend on held-out data; pass them.
        """
        params = self._validated()
        settings = FitSettings.from_params(params)
        X = check_feature_matrix(X, "X")
        if len(X) < 3:
            raise GlocalError(
                f"X: n_samples = {len(X)}; a triplet needs at least 3 objects (one row each)"
            )
        triplets = validate_triplets(triplets, len(X), where="triplets")
        if val_triplets is not None:
            val_triplets = validate_triplets(val_triplets, len(X), where="val_triplets")
        local = settings.needs_contrast  # decided here, once: the loop follows what it is given
        if local:
            if contrast is None:
                raise GlocalError(
                    f"alpha={settings.alpha} needs a contrast set of n_c × p generic features "
                    "(e.g. ImageNet): pass contrast= (--contrast on the command line), or set "
                    "alpha to 0 (the global transform)"
                )
            contrast = check_feature_matrix(contrast, "contrast")
            if contrast.shape[1] != X.shape[1]:
                raise GlocalError(
                    f"contrast has {contrast.shape[1]} features but X has {X.shape[1]}; both must "
                    "come from the same model and module"
                )
            if len(contrast) < 2:
                raise GlocalError("contrast: the local term needs at least 2 contrast examples")
        mean = float(np.mean(X, dtype=np.float64))
        std = float(np.std(X, dtype=np.float64))
        if std == 0:
            raise GlocalError("X is constant (std 0); it cannot be standardised")
        init = None
        if params["warm_start"] and hasattr(self, "weights_"):
            current: np.ndarray = self.weights_
            if current.shape != (X.shape[1], X.shape[1]):
                raise GlocalError(
                    f"warm_start: the current weights_ are {current.shape} but X has "
                    f"{X.shape[1]} features; refit without warm_start"
                )
            init = (current, getattr(self, "bias_", None))
        student = None
        if local:
            assert contrast is not None  # checked above
            raw = params["student"] == "raw"
            student = contrast if raw else _standardised(contrast, mean, std)
        result = fit_affine(
            _standardised(X, mean, std),
            triplets,
            settings,
            contrast=student,
            contrast_teacher=contrast if local else None,
            val_triplets=val_triplets,
            init=init,
        )
        self.mean_, self.std_ = mean, std
        self.weights_ = result.weights
        self.bias_ = result.bias
        self.history_ = result.history
        self.best_step_ = result.best_step
        self.n_steps_ = result.n_steps
        self.stop_reason_ = result.stop_reason
        self.init_scale_ = result.init_scale
        self.n_features_in_ = X.shape[1]
        self.device_ = result.device
        self.metadata_ = self._metadata()
        return self

    # applying --------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        check_is_fitted(self, "weights_", msg=_NOT_FITTED)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply ``((X − mean_) / std_) @ weights_ + bias_`` (float32 in, float32 out)."""
        self._check_fitted()
        X = check_feature_matrix(X, "X")
        if X.shape[1] != self.weights_.shape[0]:
            raise GlocalError(
                f"X has {X.shape[1]} features, but GlocalTransform is expecting "
                f"{self.weights_.shape[0]} features as input"
                f"{_source_hint(getattr(self, 'metadata_', {}))}"
            )
        weights = self.weights_.astype(X.dtype, copy=False)
        Z = _standardised(X, self.mean_, self.std_) @ weights
        if self.bias_ is not None:
            Z += self.bias_.astype(X.dtype, copy=False)
        return Z

    def score(self, X: np.ndarray, triplets: np.ndarray) -> float:
        """Odd-one-out accuracy (dot products, ties wrong) of the transformed ``X``."""
        return odd_one_out_accuracy(self.transform(X), triplets, similarity="dot")

    # persistence -----------------------------------------------------------------------------
    def _metadata(self, **extra: Any) -> dict[str, Any]:
        from glocal import __version__

        return {
            "format": "glocal-transform/1",
            "glocal_version": __version__,
            "hyper_parameters": plain(self.get_params()),
            "n_features": int(self.weights_.shape[0]),
            **{k: v for k, v in extra.items() if v is not None},
        }

    def save(
        self, path: str | os.PathLike, *, model: str | None = None, module: str | None = None
    ) -> Path:
        """Write the official npz layout plus our metadata (model id, module, settings, version).

        ``model`` and ``module`` label this file only: labels of a file this estimator was
        loaded from or saved to before are not carried over.
        """
        self._check_fitted()
        path = Path(path)
        if path.suffix != ".npz":
            raise GlocalError(f"transform file {path}: the name must end in .npz")
        previous = getattr(self, "metadata_", {})
        kept = {k: v for k, v in previous.items() if k not in _FILE_ONLY_METADATA}
        metadata = {**kept, **self._metadata(model=model, module=module)}
        arrays: dict[str, Any] = {
            "weights": np.asarray(self.weights_, dtype=np.float32),
            "mean": np.float32(self.mean_),
            "std": np.float32(self.std_),
            METADATA_KEY: np.array(json.dumps(metadata)),
        }
        if self.bias_ is not None:
            arrays["bias"] = np.asarray(self.bias_, dtype=np.float32)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        self.metadata_ = metadata
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> GlocalTransform:
        """Read a transform npz (ours or an official release file) as a fitted estimator.

        A file that is not a readable npz, lacks a key, holds a wrong shape, a non-real dtype,
        NaN or infinite values, a non-positive ``std`` or malformed metadata raises
        :class:`GlocalError` naming the file, the key and the fix.
        """
        path = Path(path)
        if not path.is_file():
            raise GlocalError(f"transform file {path} does not exist")
        arrays = _read_npz(path)
        missing = [key for key in ("weights", "mean", "std") if key not in arrays]
        if missing:
            raise GlocalError(
                f"transform file {path}: missing key(s) {missing}; found {sorted(arrays)}; "
                "expected 'weights' (p × p), scalar 'mean' and 'std', optional 'bias' (p,)"
            )
        for key in ("weights", "bias", "mean", "std"):
            if key in arrays:
                _check_real(path, key, arrays[key])
        weights = arrays["weights"]
        if weights.ndim != 2 or weights.shape[0] != weights.shape[1] or weights.size == 0:
            raise GlocalError(
                f"transform file {path}: 'weights' must be a non-empty square (p × p) matrix, "
                f"got shape {weights.shape}"
            )
        for key in ("mean", "std"):
            if arrays[key].size != 1:
                raise GlocalError(
                    f"transform file {path}: '{key}' must be a scalar, "
                    f"got shape {arrays[key].shape}"
                )
        bias = arrays.get("bias")
        if bias is not None and bias.shape != (weights.shape[0],):
            raise GlocalError(
                f"transform file {path}: 'bias' has shape {bias.shape}, "
                f"expected ({weights.shape[0]},)"
            )
        std = float(arrays["std"].reshape(()))
        if std <= 0:
            raise GlocalError(
                f"transform file {path}: 'std' is {std}, but the features' standard deviation "
                "must be positive; fit the transform again or fix the file's 'std'"
            )
        metadata = _read_metadata(path, arrays.get(METADATA_KEY))
        known = cls().get_params()
        params = {k: v for k, v in metadata.get("hyper_parameters", {}).items() if k in known}
        estimator = cls(**params)
        estimator.weights_ = weights
        estimator.bias_ = bias
        estimator.mean_ = float(arrays["mean"].reshape(()))
        estimator.std_ = std
        estimator.n_features_in_ = int(weights.shape[0])
        estimator.metadata_ = {**metadata, "path": str(path)}
        return estimator


def _standardised(X: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``(X − mean) / std`` in the dtype of ``X`` (the scalars of the THINGS matrix)."""
    return (X - X.dtype.type(mean)) / X.dtype.type(std)


#: Metadata that describes one file, not the fitted map: dropped when saving to another file.
_FILE_ONLY_METADATA = ("model", "module", "path")
_TRANSFORM_KEYS = ("weights", "bias", "mean", "std", METADATA_KEY)
_SAVE_AGAIN = "save it again with GlocalTransform.save() or download it again"


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The transform keys of an npz file; anything unreadable is a :class:`GlocalError`."""
    import zipfile
    import zlib

    broken = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError)
    # Our own handle: numpy leaks the file it opened when the zip directory is unreadable.
    with open(path, "rb") as fh:
        magic = fh.read(6)
        fh.seek(0)
        if magic.startswith(b"\x93NUMPY"):
            raise GlocalError(
                f"transform file {path} holds a single .npy array, not an .npz archive with the "
                "keys 'weights', 'mean', 'std' (and 'bias'); save it with GlocalTransform.save() "
                "or numpy.savez"
            )
        if not magic.startswith(b"PK"):
            what = "is empty" if not magic else f"is not an .npz (zip) archive (starts {magic!r})"
            raise GlocalError(f"transform file {path} {what}; {_SAVE_AGAIN}")
        try:
            archive = np.load(fh, allow_pickle=False)
        except broken as err:
            raise GlocalError(
                f"transform file {path} is not a readable .npz archive ({_one_line(err)}); "
                f"{_SAVE_AGAIN}"
            ) from err
        arrays = {}
        with archive:
            for key in _TRANSFORM_KEYS:
                if key not in archive.files:
                    continue
                try:
                    arrays[key] = archive[key]
                except broken as err:
                    raise GlocalError(
                        f"transform file {path}: key '{key}' cannot be read ({_one_line(err)}); "
                        f"the file is truncated or corrupt, or holds Python objects; "
                        f"{_SAVE_AGAIN}"
                    ) from err
    return arrays


def _check_real(path: Path, key: str, array: np.ndarray) -> None:
    """``array`` holds finite real numbers (floats or integers)."""
    dtype = array.dtype
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        kinds = {"c": "complex numbers", "U": "text", "S": "bytes", "b": "booleans"}
        kind = kinds.get(dtype.kind, "non-numeric values")
        raise GlocalError(
            f"transform file {path}: '{key}' holds {kind} (dtype {dtype}), expected real "
            f"numbers (float32); {_SAVE_AGAIN}"
        )
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise GlocalError(
            f"transform file {path}: '{key}' holds {bad} NaN or infinite value(s); the fit that "
            f"wrote it diverged or the file is corrupt; fit again (e.g. with a lower lr) or "
            "download it again"
        )


def _read_metadata(path: Path, raw: np.ndarray | None) -> dict[str, Any]:
    """The JSON object stored under ``glocal_metadata`` ({} when the key is absent)."""
    if raw is None:
        return {}
    where = f"transform file {path}: '{METADATA_KEY}'"
    fix = f"remove the key (official readers do not need it) or {_SAVE_AGAIN}"
    if raw.ndim != 0 or raw.dtype.kind not in "US":
        raise GlocalError(
            f"{where} must be one JSON string, got dtype {raw.dtype} shape {raw.shape}; {fix}"
        )
    text = raw.item()
    try:
        metadata = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GlocalError(f"{where} is not valid JSON ({err}); {fix}") from err
    if not isinstance(metadata, dict):
        raise GlocalError(
            f"{where} must be a JSON object ({{...}}), got {type(metadata).__name__}; {fix}"
        )
    params = metadata.get("hyper_parameters", {})
    if not isinstance(params, dict):
        raise GlocalError(
            f"{where}: field 'hyper_parameters' must be a JSON object of name: value, got "
            f"{type(params).__name__}; {fix}"
        )
    return metadata


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _source_hint(metadata: dict[str, Any]) -> str:
    source = [metadata[k] for k in ("model", "module") if metadata.get(k)]
    return f" (it was fit on {'/'.join(source)} features)" if source else ""


_NOT_FITTED = "This %(name)s is not fitted yet: call fit() or GlocalTransform.load() first."
