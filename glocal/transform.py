"""``GlocalTransform``: the gLocal affine map as a scikit-learn style estimator.

The map is ``z = ((x − μ) / σ) W + b`` with scalar μ, σ taken over the whole THINGS feature
matrix. Files use the official release's npz layout (``weights``, optional ``bias``, scalar
``mean`` and ``std``) plus one extra key, ``glocal_metadata`` (a JSON string), that official
readers ignore.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from glocal._fit import OPTIMIZERS, FitSettings, fit_affine
from glocal._io import atomic_path, check_feature_matrix
from glocal.errors import GlocalError
from glocal.losses import PENALTIES
from glocal.metrics import odd_one_out_accuracy
from glocal.triplets import validate_triplets

METADATA_KEY = "glocal_metadata"

#: The paper's three transforms. ``naive``: no local term, W shrunk toward 0; ``global``:
#: no local term, W pulled toward a scaled identity; ``glocal``: global + local terms.
PRESETS: dict[str, dict[str, Any]] = {
    "naive": {"alpha": 0.0, "regularizer": "l2"},
    "global": {"alpha": 0.0, "regularizer": "eye"},
    "glocal": {"alpha": 0.1, "regularizer": "eye"},
}


class GlocalTransform:
    """Learn an affine map of network features that aligns them with human triplet choices.

    Parameters
    ----------
    alpha : weight of the local contrastive term (0 gives the global transform).
    lmbda : strength of the penalty on W.
    tau : temperature of the local term's softmax over cosine similarities.
    bias : learn the offset b.
    regularizer : ``"eye"`` (toward a scaled identity) or ``"l2"`` (toward 0, naive).
    init_scale : W starts at ``init_scale · I`` (and b at ``init_scale · 1``).
    optimizer, lr : ``"adam"``, ``"adamw"`` or ``"sgd"`` and its learning rate.
    max_epochs : maximum passes over the training triplets.
    triplet_batch_size : triplets per step; ``None`` uses all of them (full batch).
    contrast_batch_size : contrast examples per step for the local term.
    early_stopping, patience, tol : an epoch that fails to lower the best monitored loss
        (validation global loss if given, else training loss) by the relative ``tol`` halves
        the step size; ``patience`` such epochs in a row stop the fit, keeping the best
        epoch's parameters.
    min_steps : optimiser steps before an epoch can count as stale (burn-in).
    device : ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` …
    seed : seeds batching, contrast sampling and torch; CPU fits are deterministic.
    progress : show a tqdm progress bar.
    """

    def __init__(
        self,
        alpha: float = 0.1,
        lmbda: float = 1e-3,
        tau: float = 0.1,
        bias: bool = True,
        regularizer: str = "eye",
        init_scale: float = 1e-3,
        optimizer: str = "adam",
        lr: float = 1e-2,
        max_epochs: int = 500,
        triplet_batch_size: int | None = 1 << 20,
        contrast_batch_size: int = 1024,
        early_stopping: bool = True,
        patience: int = 3,
        tol: float = 1e-3,
        min_steps: int = 100,
        device: str = "auto",
        seed: int = 0,
        progress: bool = True,
    ):
        self.alpha = alpha
        self.lmbda = lmbda
        self.tau = tau
        self.bias = bias
        self.regularizer = regularizer
        self.init_scale = init_scale
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.triplet_batch_size = triplet_batch_size
        self.contrast_batch_size = contrast_batch_size
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.min_steps = min_steps
        self.device = device
        self.seed = seed
        self.progress = progress

    # scikit-learn protocol -------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameters as a dict (scikit-learn protocol)."""
        return {name: getattr(self, name) for name in _PARAM_NAMES}

    def set_params(self, **params: Any) -> GlocalTransform:
        """Set hyper-parameters (scikit-learn protocol)."""
        for name, value in params.items():
            if name not in _PARAM_NAMES:
                raise GlocalError(f"unknown hyper-parameter {name!r}; valid: {list(_PARAM_NAMES)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = GlocalTransform().get_params()
        changed = {k: v for k, v in self.get_params().items() if v != defaults[k]}
        return f"GlocalTransform({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GlocalTransform:
        """An estimator configured as one of the paper's transforms: naive, global or glocal."""
        if name not in PRESETS:
            raise GlocalError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

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
        term; it is required when ``alpha > 0``. ``val_triplets`` drive early stopping.
        """
        settings = self._settings()
        X = check_feature_matrix(X, "X")
        triplets = validate_triplets(triplets, len(X), where="triplets")
        if val_triplets is not None:
            val_triplets = validate_triplets(val_triplets, len(X), where="val_triplets")
        if settings.alpha > 0:
            if contrast is None:
                raise GlocalError(
                    f"alpha={settings.alpha} needs a contrast set: pass contrast= (n_c × p generic "
                    "features, e.g. ImageNet) or use GlocalTransform.preset('global') (alpha=0)"
                )
            contrast = check_feature_matrix(contrast, "contrast")
            if contrast.shape[1] != X.shape[1]:
                raise GlocalError(
                    f"contrast has {contrast.shape[1]} features but X has {X.shape[1]}; both must "
                    "come from the same model and module"
                )
            if len(contrast) < 2:
                raise GlocalError("contrast: the local term needs at least 2 contrast examples")
        self.mean_ = float(np.mean(X, dtype=np.float64))
        self.std_ = float(np.std(X, dtype=np.float64))
        if self.std_ == 0:
            raise GlocalError("X is constant (std 0); it cannot be standardised")
        result = fit_affine(
            self._standardise(X),
            triplets,
            settings,
            contrast=self._standardise(contrast) if settings.alpha > 0 else None,
            contrast_teacher=contrast if settings.alpha > 0 else None,
            val_triplets=val_triplets,
        )
        self.weights_ = result.weights
        self.bias_ = result.bias
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.n_steps_ = result.n_steps
        self.n_features_in_ = X.shape[1]
        self.device_ = result.device
        self.metadata_ = self._metadata()
        return self

    def _settings(self) -> FitSettings:
        if not 0.0 <= self.alpha <= 1.0:
            raise GlocalError(f"alpha must lie in [0, 1], got {self.alpha}")
        if self.regularizer not in PENALTIES:
            raise GlocalError(
                f"regularizer must be one of {sorted(PENALTIES)}, got {self.regularizer!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise GlocalError(
                f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        for name in ("lmbda", "init_scale"):
            if getattr(self, name) < 0:
                raise GlocalError(f"{name} must be non-negative, got {getattr(self, name)}")
        for name in ("tau", "lr", "max_epochs", "contrast_batch_size", "patience"):
            if getattr(self, name) <= 0:
                raise GlocalError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.tol < 1:
            raise GlocalError(
                f"tol is a relative improvement and must be in [0, 1), got {self.tol}"
            )
        if self.min_steps < 0:
            raise GlocalError(f"min_steps must be non-negative, got {self.min_steps}")
        if self.triplet_batch_size is not None and self.triplet_batch_size <= 0:
            raise GlocalError("triplet_batch_size must be positive or None (full batch)")
        return FitSettings(**self.get_params())

    # applying --------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise GlocalError("this GlocalTransform is not fitted yet: call fit() or load() first")

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (X - X.dtype.type(self.mean_)) / X.dtype.type(self.std_)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply ``((X − mean_) / std_) @ weights_ + bias_`` (float32 in, float32 out)."""
        self._check_fitted()
        X = check_feature_matrix(X, "X")
        if X.shape[1] != self.weights_.shape[0]:
            raise GlocalError(
                f"X has {X.shape[1]} features but this transform expects {self.weights_.shape[0]}"
                f"{_source_hint(getattr(self, 'metadata_', {}))}"
            )
        weights = self.weights_.astype(X.dtype, copy=False)
        Z = self._standardise(X) @ weights
        if self.bias_ is not None:
            Z += self.bias_.astype(X.dtype, copy=False)
        return Z

    def fit_transform(self, X: np.ndarray, triplets: np.ndarray, **fit_params: Any) -> np.ndarray:
        """Fit, then transform ``X``."""
        return self.fit(X, triplets, **fit_params).transform(X)

    def score(self, X: np.ndarray, triplets: np.ndarray) -> float:
        """Odd-one-out accuracy (dot products, ties wrong) of the transformed ``X``."""
        return odd_one_out_accuracy(self.transform(X), triplets, similarity="dot")

    # persistence -----------------------------------------------------------------------------
    def _metadata(self, **extra: Any) -> dict[str, Any]:
        from glocal import __version__

        return {
            "format": "glocal-transform/1",
            "glocal_version": __version__,
            "hyper_parameters": self.get_params(),
            "n_features": int(self.weights_.shape[0]),
            **{k: v for k, v in extra.items() if v is not None},
        }

    def save(
        self, path: str | os.PathLike, *, model: str | None = None, module: str | None = None
    ) -> Path:
        """Write the official npz layout plus our metadata (model id, module, settings, version)."""
        self._check_fitted()
        metadata = {**getattr(self, "metadata_", {}), **self._metadata(model=model, module=module)}
        arrays = {
            "weights": np.asarray(self.weights_, dtype=np.float32),
            "mean": np.float32(self.mean_),
            "std": np.float32(self.std_),
            METADATA_KEY: np.array(json.dumps(metadata)),
        }
        if self.bias_ is not None:
            arrays["bias"] = np.asarray(self.bias_, dtype=np.float32)
        path = Path(path)
        if path.suffix != ".npz":
            raise GlocalError(f"transform file {path}: the name must end in .npz")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        self.metadata_ = metadata
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> GlocalTransform:
        """Read a transform npz (ours or an official release file) as a fitted estimator."""
        path = Path(path)
        if not path.is_file():
            raise GlocalError(f"transform file {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (ValueError, OSError) as err:
            raise GlocalError(
                f"transform file {path} is not a readable .npz archive ({err})"
            ) from err
        missing = [key for key in ("weights", "mean", "std") if key not in arrays]
        if missing:
            raise GlocalError(
                f"transform file {path}: missing key(s) {missing}; found {sorted(arrays)}; "
                "expected 'weights' (p × p), scalar 'mean' and 'std', optional 'bias' (p,)"
            )
        weights = arrays["weights"]
        if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
            raise GlocalError(
                f"transform file {path}: 'weights' must be square, got {weights.shape}"
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
        metadata: dict[str, Any] = {}
        if METADATA_KEY in arrays:
            try:
                metadata = json.loads(str(arrays[METADATA_KEY]))
            except json.JSONDecodeError as err:
                raise GlocalError(
                    f"transform file {path}: '{METADATA_KEY}' is not valid JSON"
                ) from err
        params = {
            k: v for k, v in metadata.get("hyper_parameters", {}).items() if k in _PARAM_NAMES
        }
        estimator = cls(**params)
        estimator.weights_ = weights
        estimator.bias_ = bias
        estimator.mean_ = float(arrays["mean"])
        estimator.std_ = float(arrays["std"])
        estimator.n_features_in_ = int(weights.shape[0])
        estimator.metadata_ = {**metadata, "path": str(path)}
        return estimator


def _source_hint(metadata: dict[str, Any]) -> str:
    source = [metadata[k] for k in ("model", "module") if metadata.get(k)]
    return f" (it was fit on {'/'.join(source)} features)" if source else ""


_PARAM_NAMES = tuple(f.name for f in fields(FitSettings))
