"""Tests for glocal.losses: each term against NumPy float64, gradients by finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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


def test_local_target_is_the_softmax_over_the_other_rows(rng):
    teacher = rng.standard_normal((7, 3))
    unit = teacher / np.linalg.norm(teacher, axis=1, keepdims=True)
    logits = unit @ unit.T / 0.2
    off = ~np.eye(7, dtype=bool)
    expected = np.zeros((7, 7))
    expected[off] = _np_softmax(logits[off].reshape(7, 6) / 1.0).ravel()
    got = losses.local_target(torch.as_tensor(teacher), 0.2).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    assert np.all(np.diag(got) == 0)


def test_local_loss_gradient_matches_autograd_through_normalize(rng):
    """The written-out backward equals autograd of the plain formula, also in the target."""
    teacher = torch.tensor(rng.standard_normal((10, 4)), requires_grad=True)
    student = torch.tensor(rng.standard_normal((10, 4)), requires_grad=True)
    tau = 0.3

    def plain(t, s):
        off = ~torch.eye(10, dtype=torch.bool)
        ct = F.normalize(t, dim=1) @ F.normalize(t, dim=1).T
        cs = F.normalize(s, dim=1) @ F.normalize(s, dim=1).T
        p = torch.softmax(ct[off].view(10, 9) / tau, dim=1)
        return -(p * torch.log_softmax(cs[off].view(10, 9) / tau, dim=1)).sum(1).mean()

    expected = torch.autograd.grad(plain(teacher, student), (teacher, student))
    got = torch.autograd.grad(losses.local_loss(teacher, student, tau), (teacher, student))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t, s: losses.local_loss(t, s, tau), (teacher, student))


def test_local_loss_of_a_zero_row_is_finite_as_with_normalize(rng):
    """A zero student row: no NaN; its gradient is normalize's (divided by its norm floor)."""
    student = torch.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    teacher = torch.as_tensor(rng.standard_normal((6, 3)))
    with torch.no_grad():
        student[2] = 0.0
    loss = losses.local_loss(teacher, student, 0.5)
    (grad,) = torch.autograd.grad(loss, student)
    target = losses.local_target(teacher, 0.5)
    off = ~torch.eye(6, dtype=torch.bool)
    cs = F.normalize(student, dim=1) @ F.normalize(student, dim=1).T
    plain = -(target[off].view(6, 5) * torch.log_softmax(cs[off].view(6, 5) / 0.5, 1)).sum(1).mean()
    (expected,) = torch.autograd.grad(plain, student)
    assert torch.isfinite(loss)
    assert float(loss.detach()) == pytest.approx(float(plain.detach()), rel=1e-12)
    np.testing.assert_allclose(grad.numpy(), expected.numpy(), rtol=1e-9)


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
