"""Tests for glocal.losses: each term against NumPy float64, gradients by finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glocal import losses


def _np_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def problem(rng):
    m, p, n = 12, 5, 40
    Z = rng.standard_normal((m, p))
    triplets = np.stack([rng.choice(m, 3, replace=False) for _ in range(n)])
    return Z, triplets


def test_pair_indices_address_the_right_entries(problem):
    Z, triplets = problem
    S = Z @ Z.T
    pairs = losses.pair_indices(torch.as_tensor(triplets), len(Z)).numpy()
    i, j, k = triplets.T
    np.testing.assert_array_equal(S.reshape(-1)[pairs], np.stack([S[i, j], S[i, k], S[j, k]], 1))


def test_global_loss_matches_numpy(problem):
    Z, triplets = problem
    S = Z @ Z.T
    expected = []
    for i, j, k in triplets:  # independent per-triplet computation
        logits = np.array([S[i, j], S[i, k], S[j, k]])
        expected.append(-np.log(np.exp(logits[0]) / np.exp(logits).sum()))
    got = losses.global_loss(torch.as_tensor(S), torch.as_tensor(triplets))
    assert got.dtype == torch.float64
    np.testing.assert_allclose(float(got), np.mean(expected), rtol=1e-12)


def test_local_loss_matches_numpy(rng):
    teacher = rng.standard_normal((9, 4))
    student = rng.standard_normal((9, 4))
    tau = 0.3

    def cosines(a):
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        c = a @ a.T
        return c[~np.eye(len(a), dtype=bool)].reshape(len(a), -1)

    P = _np_softmax(cosines(teacher) / tau)
    logQ = np.log(_np_softmax(cosines(student) / tau))
    expected = -(P * logQ).sum(axis=1).mean()
    got = losses.local_loss(torch.as_tensor(teacher), torch.as_tensor(student), tau)
    np.testing.assert_allclose(float(got), expected, rtol=1e-12)


def test_local_loss_is_minimised_by_a_rotated_scaled_copy(rng):
    teacher = rng.standard_normal((20, 6))
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    same = float(
        losses.local_loss(torch.as_tensor(teacher), torch.as_tensor(3 * teacher @ rotation), 0.1)
    )
    other = float(
        losses.local_loss(
            torch.as_tensor(teacher), torch.as_tensor(rng.standard_normal((20, 6))), 0.1
        )
    )
    assert same < other


def test_local_loss_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same rows"):
        losses.local_loss(torch.zeros(3, 2), torch.zeros(4, 2), 0.1)
    with pytest.raises(ValueError, match="at least two"):
        losses.local_loss(torch.ones(1, 2), torch.ones(1, 2), 0.1)


def test_eye_penalty_matches_numpy_and_vanishes_on_scaled_identity(rng):
    W = rng.standard_normal((7, 7))
    beta = np.trace(W) / 7
    expected = ((W - beta * np.eye(7)) ** 2).sum()
    np.testing.assert_allclose(float(losses.eye_penalty(torch.as_tensor(W))), expected, rtol=1e-12)
    assert float(losses.eye_penalty(torch.eye(5, dtype=torch.float64) * 2.5)) == pytest.approx(
        0, abs=1e-12
    )


def test_l2_penalty_matches_numpy(rng):
    W = rng.standard_normal((6, 6))
    np.testing.assert_allclose(
        float(losses.l2_penalty(torch.as_tensor(W))), (W**2).sum(), rtol=1e-12
    )


def test_frobenius_penalty_matches_numpy(rng):
    W = rng.normal(size=(6, 6))
    np.testing.assert_allclose(
        float(losses.frobenius_penalty(torch.as_tensor(W))), np.sqrt((W**2).sum()), rtol=1e-12
    )


def test_local_divergence_is_the_local_loss_minus_the_target_entropy(rng):
    teacher = torch.as_tensor(rng.normal(size=(12, 5)))
    student = torch.as_tensor(rng.normal(size=(12, 5)))
    assert float(losses.local_divergence(teacher, teacher, 0.5)) == pytest.approx(0, abs=1e-9)
    unit = teacher / teacher.norm(dim=1, keepdim=True)
    sims = (unit @ unit.T).numpy() / 0.5
    off = ~np.eye(12, dtype=bool)
    logits = sims[off].reshape(12, 11)
    P = np.exp(logits - logits.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    entropy = -(P * np.log(P)).sum(1).mean()
    expected = float(losses.local_loss(teacher, student, 0.5)) - entropy
    assert float(losses.local_divergence(teacher, student, 0.5)) == pytest.approx(expected)


def test_glocal_loss_combines_terms():
    g, loc, pen = torch.tensor(2.0), torch.tensor(4.0), torch.tensor(10.0)
    assert float(losses.glocal_loss(g, loc, pen, alpha=0.25, lmbda=0.1)) == pytest.approx(
        0.75 * 2 + 0.25 * 4 + 1.0
    )
    assert float(losses.glocal_loss(g, None, pen, alpha=0.0, lmbda=0.1)) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="local term"):
        losses.glocal_loss(g, None, pen, alpha=0.5, lmbda=0.1)


def test_gradients_match_finite_differences(problem, rng):
    Z, triplets = problem
    t = torch.as_tensor(triplets)

    def global_of_z(z):
        return losses.global_loss(z @ z.T, t)

    assert torch.autograd.gradcheck(global_of_z, (torch.tensor(Z, requires_grad=True),))
    assert torch.autograd.gradcheck(
        lambda z: losses.global_loss(losses.gram(z), t), (torch.tensor(Z, requires_grad=True),)
    )
    teacher = torch.as_tensor(rng.standard_normal((8, 4)))
    student = torch.tensor(rng.standard_normal((8, 4)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: losses.local_loss(teacher, s, 0.5), (student,))
    W = torch.tensor(rng.standard_normal((5, 5)), requires_grad=True)
    assert torch.autograd.gradcheck(losses.eye_penalty, (W,))
    assert torch.autograd.gradcheck(losses.l2_penalty, (W,))


def test_global_loss_gradient_matches_numpy_formula(problem):
    """dL/dS from the softmax formula, accumulated by hand, equals autograd's."""
    Z, triplets = problem
    S = torch.tensor(Z @ Z.T, requires_grad=True)
    losses.global_loss(S, torch.as_tensor(triplets)).backward()
    S_np = Z @ Z.T
    grad = np.zeros_like(S_np)
    for i, j, k in triplets:
        logits = np.array([S_np[i, j], S_np[i, k], S_np[j, k]])
        g = np.exp(logits - logits.max())
        g /= g.sum()
        g[0] -= 1
        for (a, b), value in zip([(i, j), (i, k), (j, k)], g, strict=False):
            grad[a, b] += value / len(triplets)
    np.testing.assert_allclose(S.grad.numpy(), grad, atol=1e-12)
