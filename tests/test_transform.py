"""Tests for glocal.transform.GlocalTransform: estimator contract, fitting, persistence."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from glocal import PRESETS, GlocalError, GlocalTransform, losses, odd_one_out_accuracy
from glocal.planted import planted_problem


@pytest.fixture(scope="module")
def small():
    return planted_problem(
        n_objects=120, n_features=10, n_dims=4, n_triplets=6000, n_contrast=80, seed=3
    )


def quick(**params):
    defaults = dict(max_steps=40, triplet_batch_size=2048, contrast_batch_size=64)
    return GlocalTransform(**{**defaults, **params})


def test_init_stores_hyper_parameters_only():
    est = GlocalTransform(alpha=0.5, tau=0.2)
    assert est.get_params()["alpha"] == 0.5 and est.get_params()["tau"] == 0.2
    assert not [name for name in vars(est) if name.endswith("_")]
    assert "alpha=0.5" in repr(est)
    assert est.set_params(lmbda=0.1) is est and est.lmbda == 0.1
    with pytest.raises(ValueError, match="Invalid parameter 'gamma'"):
        est.set_params(gamma=1)
    with pytest.raises(TypeError):
        GlocalTransform(0.5)  # hyper-parameters are keyword-only


def test_presets():
    naive = GlocalTransform.preset("naive").get_params()
    # the official naive probe: unsquared Frobenius penalty, no bias, W from 1e-3·I
    assert (naive["regularizer"], naive["bias"], naive["init_scale"]) == ("fro", False, 1e-3)
    assert GlocalTransform.preset("naive-l2").regularizer == "l2"
    assert GlocalTransform.preset("global").alpha == 0.0
    tuned = GlocalTransform.preset("glocal", alpha=0.3, lmbda=0.05)
    assert (tuned.alpha, tuned.lmbda, tuned.regularizer) == (0.3, 0.05, "eye")  # rest: preset
    assert set(PRESETS) == {"naive", "naive-l2", "global", "glocal"}
    with pytest.raises(GlocalError, match="unknown preset"):
        GlocalTransform.preset("fancy")


def test_fit_sets_attributes_and_beats_raw_features(small):
    est = quick(alpha=0.05, max_steps=150)
    assert est.fit(small.X, small.triplets, contrast=small.contrast) is est
    for name in ("weights_", "bias_", "mean_", "std_", "history_", "n_features_in_"):
        assert hasattr(est, name)
    assert est.weights_.shape == (10, 10) and est.bias_.shape == (10,)
    assert est.mean_ == pytest.approx(float(small.X.mean()), abs=1e-6)
    assert est.std_ == pytest.approx(float(small.X.std()), rel=1e-6)
    record = est.history_[-1]
    keys = (
        "step epoch loss global_loss local_loss penalty train_acc lr val_loss val_local objective"
    )
    assert set(keys.split()) <= set(record)
    assert est.history_[-1]["val_loss"] < est.history_[0]["val_loss"]  # step-0 check first
    raw = odd_one_out_accuracy(small.X, small.triplets, similarity="cosine")
    assert est.score(small.X, small.triplets) > raw + 0.1
    Z = est.transform(small.X)
    assert Z.dtype == np.float32 and Z.shape == small.X.shape


def test_cpu_fit_is_deterministic(small):
    a = quick(alpha=0.25, max_steps=10).fit(small.X, small.triplets, contrast=small.contrast)
    b = quick(alpha=0.25, max_steps=10).fit(small.X, small.triplets, contrast=small.contrast)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    c = quick(alpha=0.25, max_steps=10, seed=1).fit(
        small.X, small.triplets, contrast=small.contrast
    )
    assert not np.array_equal(a.weights_, c.weights_)


def test_full_batch_and_early_stopping(small):
    est = quick(alpha=0.0, triplet_batch_size=None, max_steps=2000, patience=3, lr=0.05)
    est.fit(small.X, small.triplets[:5000], val_triplets=small.triplets[5000:])
    assert all(h["epoch"] == h["step"] for h in est.history_)  # one step per pass
    assert est.stop_reason_ == "converged" and est.n_steps_ < 2000
    best = min(h["objective"] for h in est.history_)
    assert next(h for h in est.history_ if h["step"] == est.best_step_)["objective"] == best


def test_the_loop_applies_the_stopping_rule_at_every_check(small):
    """Replay the documented rule on the recorded checks: the step size of every window, when
    the fit went back to its best check, and why it stopped."""
    est = quick(alpha=0.0, triplet_batch_size=None, max_steps=2000, patience=3, lr=0.05,
                min_steps=20, tol=1e-3, eval_every=5)  # fmt: skip
    est.fit(small.X, small.triplets[:5000], val_triplets=small.triplets[5000:])
    start = est.history_[0]["objective"]
    reference, best, best_step, stale, lr = start, start, 0, 0, 0.05
    for record in est.history_[1:]:
        assert record["step"] % 5 == 0
        assert record["lr"] == pytest.approx(lr)
        value = record["objective"]
        improved = value < best
        if improved:
            best, best_step = value, record["step"]
        if value < reference * (1 - 1e-3):
            reference, stale = value, 0
            assert not record["restored"]
        elif record["step"] >= 20:
            lr /= 2
            stale += best_step > 0
            assert record["restored"] == (not improved and stale < 3)
    assert stale == 3 and est.stop_reason_ == "converged"  # it stopped because of the rule
    assert est.best_step_ == best_step > 0


def test_no_early_stop_during_burn_in(small):
    est = quick(alpha=0.5, triplet_batch_size=None, patience=1, min_steps=30, max_steps=200)
    est.fit(small.X, small.triplets, contrast=small.contrast)
    assert est.n_steps_ >= 30
    assert all(h["lr"] == est.lr for h in est.history_[1:] if h["step"] <= 30)


def test_monitor_holds_out_a_contrast_slice(small, monkeypatch):
    """With validation triplets, the local term is monitored on contrast rows it never trains on."""
    seen = []
    original = losses.local_divergence

    def spy(teacher, student, tau, target=None):
        seen.append(teacher.shape[0])
        return original(teacher, student, tau, target)

    monkeypatch.setattr(losses, "local_divergence", spy)
    quick(alpha=0.5, max_steps=10, eval_every=5).fit(
        small.X, small.triplets[:5000], contrast=small.contrast, val_triplets=small.triplets[5000:]
    )
    assert seen == [16, 16, 16]  # 20% of 80 rows, one check at steps 0, 5 and 10


def test_identity_scale_init(small):
    est = quick(alpha=0.0, max_steps=1).fit(small.X, small.triplets)
    assert est.init_scale_ > 0
    X = (small.X - est.mean_) / est.std_

    def loss(beta):
        S = torch.tensor(X @ X.T * beta**2)
        return float(losses.global_loss(S, torch.as_tensor(small.triplets)))

    assert loss(est.init_scale_) <= min(loss(est.init_scale_ * 0.8), loss(est.init_scale_ * 1.25))


def test_student_side_uses_the_deployed_map(small, monkeypatch):
    """The local term's student features equal transform() of the contrast rows."""
    seen = []
    original = losses.local_loss

    def spy(teacher, student, tau, target=None):
        seen.append((teacher.detach().clone(), student.detach().clone()))
        return original(teacher, student, tau, target)

    monkeypatch.setattr(losses, "local_loss", spy)
    est = quick(alpha=0.5, max_steps=1, init_scale=0.7)
    est.fit(small.X, small.triplets, contrast=small.contrast)
    teacher, student = seen[0]  # step-0 check: W = 0.7 I, b = 0
    unit = small.contrast / np.linalg.norm(small.contrast, axis=1, keepdims=True)
    rows = [int(np.argmin(np.abs(unit - t).sum(1))) for t in teacher.numpy()]
    initial = GlocalTransform()
    initial.weights_, initial.bias_ = np.eye(10) * 0.7, np.zeros(10)
    initial.mean_, initial.std_ = est.mean_, est.std_
    np.testing.assert_allclose(
        student.numpy(), initial.transform(small.contrast[rows]), rtol=1e-5, atol=1e-6
    )


def test_alpha_zero_needs_no_contrast_and_alpha_positive_does(small):
    assert not quick(alpha=0.0).needs_contrast and quick(alpha=1e-9).needs_contrast
    without = quick(alpha=0.0, max_steps=20).fit(small.X, small.triplets)
    # the estimator decides: at alpha = 0 a contrast set given (even an unusable one) is unused
    ignored = quick(alpha=0.0, max_steps=20).fit(small.X, small.triplets, contrast=np.ones((1, 3)))
    np.testing.assert_array_equal(ignored.weights_, without.weights_)
    with pytest.raises(GlocalError, match="needs a contrast set"):
        quick(alpha=0.25).fit(small.X, small.triplets)
    with pytest.raises(GlocalError, match="contrast has 3 features but X has 10"):
        quick(alpha=0.25).fit(small.X, small.triplets, contrast=np.ones((5, 3)))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"regularizer": "l1"}, "regularizer"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"tau": 0}, "tau"),
        ({"triplet_batch_size": 0}, "triplet_batch_size"),
        ({"lmbda": -1}, "lmbda"),
        ({"tol": 1.0}, r"tol must be a finite number in \[0, 1\), got 1.0"),
        ({"tol": -1e-3}, "tol"),
        ({"lr": float("nan")}, r"lr must be a finite number in \(0, ∞\), got nan"),
        ({"lmbda": float("inf")}, "lmbda must be a finite number"),
        ({"init_scale": 0.0}, r"init_scale must be a finite number in \(0, ∞\)"),
        ({"max_steps": 2.5}, "max_steps must be an integer >= 1"),
        ({"bias": 1}, "bias must be True or False"),
    ],
)
def test_bad_hyper_parameters(small, params, message):
    with pytest.raises(GlocalError, match=message):
        quick(**params).fit(small.X, small.triplets, contrast=small.contrast)


def test_numpy_scalars_are_accepted_like_python_numbers(small, tmp_path):
    # before: "alpha must be a finite number in [0, 1], got np.float32(0.25)"
    numpy_params = dict(alpha=np.float32(0.25), lmbda=np.float64(0.01), tau=np.float16(0.5),
                        max_steps=np.int64(30), seed=np.int32(1), bias=np.bool_(True))  # fmt: skip
    est = quick(**numpy_params)
    assert all(clone(est).get_params()[k] is v for k, v in numpy_params.items())
    est.fit(small.X, small.triplets, contrast=small.contrast)
    python = quick(**{k: v.item() for k, v in numpy_params.items()})
    python.fit(small.X, small.triplets, contrast=small.contrast)
    np.testing.assert_array_equal(est.weights_, python.weights_)
    loaded = GlocalTransform.load(est.save(tmp_path / "t.npz"))  # JSON records Python numbers
    assert {k: loaded.get_params()[k] for k in numpy_params} == {
        k: v.item() for k, v in numpy_params.items()
    }


def test_bad_fit_input(small):
    with pytest.raises(GlocalError, match="2-D"):
        quick(alpha=0).fit(small.X[0], small.triplets)
    with pytest.raises(GlocalError, match="outside"):
        quick(alpha=0).fit(small.X[:50], small.triplets)
    with pytest.raises(GlocalError, match="val_triplets"):
        quick(alpha=0).fit(small.X, small.triplets, val_triplets=np.array([[0, 0, 1]]))
    with pytest.raises(NotFittedError, match="not fitted"):
        GlocalTransform().transform(small.X)


def test_save_load_round_trip(small, tmp_path):
    est = quick(alpha=0.25, max_steps=2, lmbda=0.01).fit(
        small.X, small.triplets, contrast=small.contrast
    )
    path = est.save(tmp_path / "t.npz", model="my-net", module="fc")
    loaded = GlocalTransform.load(path)
    np.testing.assert_array_equal(loaded.transform(small.X), est.transform(small.X))
    assert loaded.lmbda == 0.01 and loaded.alpha == 0.25
    assert loaded.metadata_["model"] == "my-net" and loaded.metadata_["module"] == "fc"
    assert loaded.metadata_["n_features"] == 10 and "glocal_version" in loaded.metadata_
    # an official reader sees the official keys and needs no pickle
    with np.load(path, allow_pickle=False) as data:
        assert {"weights", "bias", "mean", "std"} <= set(data.files)
        assert data["mean"].shape == () and json.loads(str(data["glocal_metadata"]))
    with pytest.raises(
        GlocalError, match="X has 3 features, but GlocalTransform is expecting 10 .*my-net/fc"
    ):
        loaded.transform(np.ones((4, 3)))
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_load_errors(tmp_path):
    with pytest.raises(GlocalError, match="does not exist"):
        GlocalTransform.load(tmp_path / "none.npz")
    np.savez(tmp_path / "a.npz", weights=np.eye(3))
    with pytest.raises(
        GlocalError, match=r"missing key\(s\) \['mean', 'std'\]; found \['weights'\]"
    ):
        GlocalTransform.load(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", weights=np.ones((3, 2)), mean=0.0, std=1.0)
    with pytest.raises(GlocalError, match="square"):
        GlocalTransform.load(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", weights=np.eye(3), bias=np.ones(4), mean=0.0, std=1.0)
    with pytest.raises(GlocalError, match="'bias' has shape"):
        GlocalTransform.load(tmp_path / "c.npz")
    est = GlocalTransform()
    est.weights_, est.bias_, est.mean_, est.std_ = np.eye(2), None, 0.0, 1.0
    with pytest.raises(GlocalError, match=r"\.npz"):
        est.save(tmp_path / "e.npy")


def _valid_npz() -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, weights=np.eye(3, dtype=np.float32), bias=np.zeros(3, np.float32),
             mean=np.float32(0.5), std=np.float32(2.0))  # fmt: skip
    return buffer.getvalue()


def _corrupt(raw: bytes) -> bytes:
    """Overwrite the middle of the stored 'weights' array: the zip's CRC no longer matches."""
    start = raw.index(b"\x93NUMPY")  # the first member, weights.npy
    broken = bytearray(raw)
    broken[start + 140 : start + 150] = b"\xff" * 10
    return bytes(broken)


_OK = {"weights": np.eye(3), "mean": 0.0, "std": 1.0}
_META = "glocal_metadata"
# (case, content: bytes or the keys for np.savez, the key/field the message must name, the fix)
BAD_TRANSFORMS = [
    ("empty", b"", "is empty", "save it again"),
    ("truncated", _valid_npz()[:200], "not a readable .npz", "save it again"),
    ("corrupt", _corrupt(_valid_npz()), "key 'weights' cannot be read", "truncated or corrupt"),
    ("text", b"weights,mean,std\n", r"not an .npz \(zip\) archive", "save it again"),
    ("single .npy", "npy", "single .npy array", "numpy.savez"),
    ("nan weights", {**_OK, "weights": np.full((3, 3), np.nan)}, "'weights' holds 9 NaN",
     "fit again"),
    ("inf bias", {**_OK, "bias": np.array([0.0, np.inf, 0.0])}, "'bias' holds 1 NaN or inf",
     "fit again"),
    ("nan mean", {**_OK, "mean": np.nan}, "'mean' holds 1 NaN", "fit again"),
    ("inf std", {**_OK, "std": np.inf}, "'std' holds 1 NaN", "fit again"),
    ("zero std", {**_OK, "std": 0.0}, "'std' is 0.0", "must be positive"),
    ("negative std", {**_OK, "std": -1.0}, "'std' is -1.0", "must be positive"),
    ("complex weights", {**_OK, "weights": np.eye(3) * 1j}, "'weights' holds complex numbers",
     "expected real numbers"),
    ("text weights", {**_OK, "weights": np.full((3, 3), "a")}, "'weights' holds text",
     "expected real numbers"),
    ("bool mean", {**_OK, "mean": np.bool_(True)}, "'mean' holds booleans",
     "expected real numbers"),
    ("object weights", {**_OK, "weights": np.full((3, 3), None, dtype=object)},
     "key 'weights' cannot be read", "Python objects"),
    ("metadata not JSON", {**_OK, _META: np.array("{model: x}")}, f"'{_META}' is not valid JSON",
     "remove the key"),
    ("metadata a list", {**_OK, _META: np.array("[1, 2]")}, "must be a JSON object", "got list"),
    ("metadata a number", {**_OK, _META: np.array(3.5)}, "must be one JSON string",
     "remove the key"),
    ("hyper-parameters a list",
     {**_OK, _META: np.array(json.dumps({"hyper_parameters": [0.1]}))},
     "field 'hyper_parameters' must be a JSON object", "remove the key"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "names", "fix"),
    [case[1:] for case in BAD_TRANSFORMS],
    ids=[case[0] for case in BAD_TRANSFORMS],
)
def test_load_refuses_bad_files_with_one_clear_error(tmp_path, content, names, fix):
    path = tmp_path / "t.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "npy":
        with open(path, "wb") as fh:
            np.save(fh, np.eye(3))
    else:
        np.savez(path, **content)
    with pytest.raises(GlocalError) as err:
        GlocalTransform.load(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert re.search(names, message), message
    assert re.search(fix, message), message


def test_save_does_not_carry_old_labels_into_a_new_file(small, tmp_path):
    est = quick(alpha=0.0, max_steps=1).fit(small.X, small.triplets)
    est.save(tmp_path / "a.npz", model="old-net", module="fc")
    loaded = GlocalTransform.load(tmp_path / "a.npz")
    loaded.metadata_["experiment"] = {"kind": "global"}  # other metadata is kept
    loaded.save(tmp_path / "b.npz")
    again = GlocalTransform.load(tmp_path / "b.npz")
    assert "model" not in again.metadata_ and "module" not in again.metadata_
    assert again.metadata_["path"] == str(tmp_path / "b.npz")
    assert again.metadata_["experiment"] == {"kind": "global"}
    with np.load(tmp_path / "b.npz") as raw:
        assert "path" not in json.loads(str(raw[_META]))
    est.save(tmp_path / "c.npz", module="penultimate")
    labels = GlocalTransform.load(tmp_path / "c.npz").metadata_
    assert labels["module"] == "penultimate" and "model" not in labels


OFFICIAL = [
    "clip_RN50/visual",
    "clip_ViT-L/14/visual",
    "OpenCLIP_ViT-L-14_laion400m_e32/visual",
    "dino-vit-base-p8/norm",
    "resnet18/avgpool",
]


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_transforms_apply_like_numpy(data_dir, name, rng):
    path = data_dir / "transforms" / name / "transform.npz"
    est = GlocalTransform.load(path)
    with np.load(path) as raw:
        W, mean, std = raw["weights"].astype(np.float64), float(raw["mean"]), float(raw["std"])
        b = raw["bias"].astype(np.float64) if "bias" in raw.files else 0.0
    X = (rng.standard_normal((50, W.shape[0])) * std + mean).astype(np.float32)
    expected = ((X.astype(np.float64) - mean) / std) @ W + b
    got = est.transform(X)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert est.metadata_["path"] == str(path)
    with pytest.raises(GlocalError, match=f"expecting {W.shape[0]} features"):
        est.transform(X[:, :-1])


@pytest.mark.parametrize(
    ("device", "gpus", "expected"),
    [("auto", 0, "cpu"), ("auto", 2, "cuda"), ("cpu", 2, "cpu"), ("cuda:1", 2, "cuda:1"),
     ("cuda", 0, "CUDA is not available"), ("cuda:2", 2, "has 2 CUDA device"),
     ("tpu", 0, "not a torch device")],
)  # fmt: skip
def test_device_rule(monkeypatch, device, gpus, expected):
    from glocal._device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    if expected.startswith(("cpu", "cuda")):
        assert str(resolve_device(device)) == expected
    else:
        with pytest.raises(GlocalError, match=expected):
            resolve_device(device)


def test_warm_start_continues_from_the_current_weights(small):
    cold = quick(alpha=0.0, max_steps=200).fit(small.X, small.triplets[:5000],
                                               val_triplets=small.triplets[5000:])  # fmt: skip
    warm = clone_with(cold, warm_start=True, lmbda=0.01)
    warm.weights_, warm.bias_ = cold.weights_, cold.bias_
    warm.fit(small.X, small.triplets[:5000], val_triplets=small.triplets[5000:])
    start = warm.history_[0]["objective"]
    # the warm fit starts where the cold one ended (same data, nearly the same objective)
    assert start < cold.history_[0]["objective"]
    assert warm.init_scale_ == pytest.approx(np.trace(cold.weights_) / 10)
    assert warm.n_steps_ < cold.n_steps_


def clone_with(est, **params):
    from sklearn.base import clone

    return clone(est).set_params(**params)


def test_raw_student_feeds_unstandardised_contrast(small, monkeypatch):
    seen = []
    original = losses.local_loss

    def spy(teacher, student, tau, target=None):
        seen.append(student.detach().clone())
        return original(teacher, student, tau, target)

    monkeypatch.setattr(losses, "local_loss", spy)
    X, C = small.X * 5 + 3, small.contrast * 5 + 3  # far from standardised
    quick(alpha=0.5, max_steps=1, init_scale=1.0, student="raw", bias=False).fit(
        X, small.triplets, contrast=C
    )
    rows = {tuple(np.round(r, 3)) for r in C.astype(np.float32)}
    assert all(tuple(np.round(r, 3)) in rows for r in seen[0].numpy())  # W = I: raw rows


def test_the_naive_fit_penalises_the_unsquared_frobenius_norm(small):
    """The fitter's monitored objective at the start is the validation loss plus
    λ·‖W₀‖_F for the naive start W₀ = 10⁻³ I (not its square, as the "l2" penalty)."""
    p, lmbda = small.X.shape[1], 0.5
    for regularizer, penalty in (("fro", 1e-3 * np.sqrt(p)), ("l2", 1e-6 * p)):
        est = quick(alpha=0.0, regularizer=regularizer, lmbda=lmbda, bias=False,
                    init_scale=1e-3, max_steps=10)  # fmt: skip
        est.fit(small.X, small.triplets[:5000], val_triplets=small.triplets[5000:])
        first = est.history_[0]
        assert first["objective"] - first["val_loss"] == pytest.approx(lmbda * penalty, rel=1e-5)
