"""The optimisation loop behind :meth:`glocal.GlocalTransform.fit`.

Speed comes from the structure of the global loss: it depends only on the m × m similarity
matrix of the transformed THINGS objects. Each step transforms the m objects once, forms
``S = Z Zᵀ`` and gathers the three logits of every triplet in the batch by flat index.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from glocal import losses
from glocal._device import resolve_device

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
_EVAL_CHUNK = 1 << 20


@dataclass
class FitResult:
    """Fitted parameters and the per-epoch record."""

    weights: np.ndarray
    bias: np.ndarray | None
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    n_steps: int = 0
    device: str = "cpu"


class _ContrastSampler:
    """Cycle through a seeded permutation of the contrast rows, one batch per step."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device):
        self.n, self.batch_size, self.generator, self.device = (
            n,
            min(batch_size, n),
            generator,
            device,
        )
        self.order = torch.randperm(n, generator=generator)
        self.position = 0

    def next(self) -> torch.Tensor:
        if self.position + self.batch_size > self.n:
            self.order = torch.randperm(self.n, generator=self.generator)
            self.position = 0
        batch = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return batch.to(self.device)


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
            total_correct += int(_correct(logits).sum())
    return total_loss / len(pairs), total_correct / len(pairs)


def _correct(logits: torch.Tensor) -> torch.Tensor:
    return (logits[:, 0] > logits[:, 1]) & (logits[:, 0] > logits[:, 2])


def fit_affine(
    objects: np.ndarray,
    triplets: np.ndarray,
    settings: Any,
    contrast: np.ndarray | None = None,
    contrast_teacher: np.ndarray | None = None,
    val_triplets: np.ndarray | None = None,
) -> FitResult:
    """Minimise ``(1 − α) L_global + α L_local + λ penalty`` over an affine map.

    ``settings`` holds the estimator's validated hyper-parameters as attributes.
    ``objects`` are the standardised THINGS features (m × p); ``contrast`` the standardised
    contrast features the student sees, ``contrast_teacher`` the original contrast features
    whose cosine neighbourhoods are the target.
    """
    device = resolve_device(settings.device)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    dtype = torch.float32
    m, p = objects.shape
    x = torch.as_tensor(objects, dtype=dtype, device=device)
    train_pairs = losses.pair_indices(torch.as_tensor(triplets), m).to(device)
    val_pairs = (
        losses.pair_indices(torch.as_tensor(val_triplets), m).to(device)
        if val_triplets is not None
        else None
    )
    use_local = settings.alpha > 0
    if use_local:
        student_in = torch.as_tensor(contrast, dtype=dtype, device=device)
        teacher_unit = torch.nn.functional.normalize(
            torch.as_tensor(contrast_teacher, dtype=dtype, device=device), dim=1
        )
        sampler = _ContrastSampler(len(student_in), settings.contrast_batch_size, generator, device)

    weights = torch.nn.Parameter(torch.eye(p, dtype=dtype, device=device) * settings.init_scale)
    params = [weights]
    bias = None
    if settings.bias:
        bias = torch.nn.Parameter(torch.full((p,), settings.init_scale, dtype=dtype, device=device))
        params.append(bias)
    opt_kwargs = {"lr": settings.lr}
    if settings.optimizer == "sgd":
        opt_kwargs["momentum"] = 0.9
    optimizer = OPTIMIZERS[settings.optimizer](params, **opt_kwargs)
    penalty_fn = losses.PENALTIES[settings.regularizer]

    n = len(train_pairs)
    largest = n if settings.triplet_batch_size is None else min(settings.triplet_batch_size, n)
    steps_per_epoch = math.ceil(n / largest)
    # Equal batches (none larger than asked): a nearly empty last batch would cost a full step.
    batch_size = math.ceil(n / steps_per_epoch)
    history: list[dict] = []
    best = (math.inf, 0, None)
    reference, stale = math.inf, 0  # reference: the loss an epoch must beat by tol
    step = 0
    bar = tqdm(
        range(1, settings.max_epochs + 1),
        desc="fit",
        unit="epoch",
        disable=not settings.progress,
        leave=False,
    )
    start_time = time.perf_counter()
    for epoch in bar:
        order = torch.randperm(n, generator=generator).to(device) if steps_per_epoch > 1 else None
        sums = {"loss": 0.0, "global_loss": 0.0, "local_loss": 0.0, "penalty": 0.0}
        correct = 0
        for b in range(steps_per_epoch):
            pairs = (
                train_pairs
                if order is None
                else train_pairs[order[b * batch_size : (b + 1) * batch_size]]
            )
            logits = losses.triplet_logits(losses.gram(_affine(x, weights, bias)), pairs)
            global_term = losses.triplet_cross_entropy(logits).mean()
            local_term = None
            if use_local:
                idx = sampler.next()
                student = _affine(student_in[idx], weights, bias)
                local_term = losses.local_loss(teacher_unit[idx], student, settings.tau)
            penalty = penalty_fn(weights)
            loss = losses.glocal_loss(
                global_term, local_term, penalty, settings.alpha, settings.lmbda
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            share = len(pairs) / n
            sums["loss"] += float(loss.detach()) * share
            sums["global_loss"] += float(global_term.detach()) * share
            if local_term is not None:
                sums["local_loss"] += float(local_term.detach()) * share
            sums["penalty"] += float(penalty.detach()) * share
            correct += int(_correct(logits.detach()).sum())
        if not math.isfinite(sums["loss"]):
            raise FloatingPointError(
                f"the loss became {sums['loss']} at epoch {epoch}; lower the learning rate (lr)"
            )
        record = {"epoch": epoch, "steps": step, **sums, "train_acc": correct / n}
        if val_pairs is not None:
            record["val_loss"], record["val_acc"] = _evaluate(x, weights, bias, val_pairs)
        record["seconds"] = time.perf_counter() - start_time
        history.append(record)
        monitored = record.get("val_loss", record["loss"])
        record["lr"] = optimizer.param_groups[0]["lr"]
        # The loss can rise before it falls (small init, local term), so nothing counts as
        # stale before min_steps optimiser steps. After that every epoch that fails to improve
        # the best monitored loss by the relative tol halves the step size (at a fixed step
        # size Adam settles within an epoch or two and then drifts), and patience such epochs
        # in a row end the fit.
        if monitored < best[0]:  # the weights kept are always those of the lowest loss
            best = (monitored, epoch, _snapshot(weights, bias))
        if monitored < reference * (1 - settings.tol):
            reference, stale = monitored, 0
        elif step >= settings.min_steps:
            stale += 1
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
        postfix = {"loss": f"{record['loss']:.4f}"}
        if "val_acc" in record:
            postfix["val_acc"] = f"{record['val_acc']:.4f}"
        bar.set_postfix(postfix)
        if settings.early_stopping and stale >= settings.patience:
            break
    bar.close()
    best_weights, best_bias = best[2] if best[2] is not None else _snapshot(weights, bias)
    return FitResult(
        weights=best_weights,
        bias=best_bias,
        history=history,
        best_epoch=best[1],
        n_steps=step,
        device=str(device),
    )


def _snapshot(weights, bias) -> tuple[np.ndarray, np.ndarray | None]:
    w = weights.detach().cpu().numpy().copy()
    b = bias.detach().cpu().numpy().copy() if bias is not None else None
    return w, b
