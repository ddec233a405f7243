"""Baseline for the fit benchmark: the gLocal objective written the way the official research
code computes it (per step: one-hot selection matrix times the transformed object matrix,
256 triplets and 1024 contrast images), kept here only for comparison."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from glocal import losses


class OneHotMinibatchFitter:
    """Minibatch gLocal with one-hot triplet selection (no similarity-matrix gather)."""

    def __init__(
        self,
        X_std,
        contrast_std,
        contrast_raw,
        alpha=0.25,
        lmbda=1e-3,
        tau=0.1,
        lr=1e-3,
        init_scale=1e-3,
        triplet_batch=256,
        contrast_batch=1024,
        seed=0,
    ):
        torch.manual_seed(seed)
        self.x = torch.as_tensor(X_std, dtype=torch.float32)
        self.c_std = torch.as_tensor(contrast_std, dtype=torch.float32)
        self.c_raw = torch.as_tensor(contrast_raw, dtype=torch.float32)
        p = self.x.shape[1]
        self.W = torch.nn.Parameter(torch.eye(p) * init_scale)
        self.b = torch.nn.Parameter(torch.full((p,), init_scale))
        self.opt = torch.optim.Adam([self.W, self.b], lr=lr)
        self.alpha, self.lmbda, self.tau = alpha, lmbda, tau
        self.triplet_batch, self.contrast_batch = triplet_batch, contrast_batch

    def step(self, triplets: torch.Tensor) -> float:
        """One optimiser step on a batch of triplets (n, 3)."""
        m = self.x.shape[0]
        one_hots = F.one_hot(triplets.reshape(-1), m).to(torch.float32)  # (3n, m)
        embedding = self.x @ self.W + self.b
        batch = one_hots @ embedding
        anchor, positive, negative = torch.unbind(batch.reshape(-1, 3, batch.shape[1]), dim=1)
        dots = torch.stack(
            [(anchor * positive).sum(1), (anchor * negative).sum(1), (positive * negative).sum(1)],
            1,
        )
        global_term = F.cross_entropy(dots, torch.zeros(len(dots), dtype=torch.long))
        idx = torch.randint(0, len(self.c_std), (self.contrast_batch,))
        student = self.c_std[idx] @ self.W + self.b
        local_term = losses.local_loss(self.c_raw[idx], student, self.tau)
        loss = (
            (1 - self.alpha) * global_term
            + self.alpha * local_term
            + self.lmbda * losses.eye_penalty(self.W)
        )
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def time_steps(self, triplets: np.ndarray, n_steps: int, seed: int = 0) -> float:
        """Mean seconds per step over ``n_steps`` steps (after one warm-up step)."""
        rng = np.random.default_rng(seed)
        batches = [
            torch.as_tensor(triplets[rng.integers(0, len(triplets), self.triplet_batch)])
            for _ in range(n_steps + 1)
        ]
        self.step(batches[0])
        start = time.perf_counter()
        for batch in batches[1:]:
            self.step(batch)
        return (time.perf_counter() - start) / n_steps
