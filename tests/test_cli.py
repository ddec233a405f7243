"""End-to-end tests of the glocal command line (fit, apply, score, simulate) in a temp dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glocal import GlocalTransform, odd_one_out_accuracy
from glocal.cli import main
from glocal.planted import planted_problem
from glocal.search import resolve_grid


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    problem = planted_problem(
        n_objects=150,
        n_features=12,
        n_dims=4,
        n_triplets=8000,
        n_contrast=100,
        seed=4,
        human_scale=3.0,
    )
    np.save(root / "X.npy", problem.X)
    np.save(root / "H.npy", problem.H)
    np.save(root / "C.npy", problem.contrast)
    return root, problem


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_fit_apply_score(files, capsys):
    root, problem = files
    code, out, _ = run(
        capsys,
        "simulate",
        "--embedding",
        root / "H.npy",
        "--n",
        6000,
        "--seed",
        1,
        "--out",
        root / "train.npy",
    )
    assert code == 0 and "saved 6000 triplets" in out
    run(
        capsys,
        "simulate",
        "--embedding",
        root / "H.npy",
        "--n",
        1500,
        "--seed",
        2,
        "--out",
        root / "val.txt",
    )
    code, out, _ = run(
        capsys,
        "fit",
        "--features",
        root / "X.npy",
        "--triplets",
        root / "train.npy",
        "--val-triplets",
        root / "val.txt",
        "--contrast",
        root / "C.npy",
        "--out",
        root / "t.npz",
        "--max-steps",
        200,
        "--triplet-batch-size",
        "none",
        "--model",
        "toy",
        "--module",
        "fc",
        "--quiet",
    )
    assert code == 0 and "saved" in out and "val acc" in out
    est = GlocalTransform.load(root / "t.npz")
    assert est.metadata_["model"] == "toy" and est.alpha == 0.1
    code, out, _ = run(
        capsys,
        "apply",
        "--transform",
        root / "t.npz",
        "--features",
        root / "X.npy",
        "--out",
        root / "Z.npy",
    )
    assert code == 0
    Z = np.load(root / "Z.npy")
    np.testing.assert_allclose(Z, est.transform(problem.X))
    code, out, _ = run(
        capsys,
        "score",
        "--features",
        root / "X.npy",
        "--triplets",
        root / "val.txt",
        "--transform",
        root / "t.npz",
    )
    val = np.loadtxt(root / "val.txt", dtype=int)
    assert code == 0 and f"{odd_one_out_accuracy(Z, val):.4f}" in out and "dot" in out
    code, out, _ = run(
        capsys, "score", "--features", root / "X.npy", "--triplets", root / "val.txt"
    )
    assert f"{odd_one_out_accuracy(problem.X, val, 'cosine'):.4f}" in out and "cosine" in out
    assert odd_one_out_accuracy(Z, val) > odd_one_out_accuracy(problem.X, val, "cosine") + 0.1


def test_fit_presets_and_overrides(files, capsys):
    root, _ = files
    run(capsys, "simulate", "--embedding", root / "H.npy", "--n", 3000, "--out", root / "t3.npy")
    code, _, _ = run(
        capsys,
        "fit",
        "--features",
        root / "X.npy",
        "--triplets",
        root / "t3.npy",
        "--preset",
        "naive-l2",
        "--max-steps",
        20,
        "--no-bias",
        "--lmbda",
        0.01,
        "--out",
        root / "naive.npz",
        "--quiet",
    )
    est = GlocalTransform.load(root / "naive.npz")
    assert code == 0 and est.regularizer == "l2" and est.bias_ is None and est.lmbda == 0.01
    code, _, _ = run(capsys, "fit", "--features", root / "X.npy", "--triplets", root / "t3.npy",
                         "--preset", "naive", "--max-steps", 20, "--out", root / "official.npz",
                         "--quiet")  # fmt: skip
    official = GlocalTransform.load(root / "official.npz")
    assert code == 0 and official.regularizer == "fro" and official.bias_ is None


def _one_line_error(code, err):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_bad_inputs_give_one_line_errors(files, capsys, tmp_path):
    root, _ = files
    np.save(tmp_path / "vec.npy", np.ones(5))
    np.save(tmp_path / "bad_t.npy", np.array([[0, 1, 999]]))
    (tmp_path / "wrong.csv").write_text("a,b,c\n1,2,3\n")
    cases = [
        (
            [
                "fit",
                "--features",
                tmp_path / "vec.npy",
                "--triplets",
                tmp_path / "bad_t.npy",
                "--out",
                tmp_path / "o.npz",
            ],
            "2-D matrix",
        ),
        (
            [
                "fit",
                "--features",
                root / "X.npy",
                "--triplets",
                tmp_path / "bad_t.npy",
                "--out",
                tmp_path / "o.npz",
            ],
            "outside [0, 150)",
        ),
        (
            [
                "fit",
                "--features",
                root / "X.npy",
                "--triplets",
                tmp_path / "wrong.csv",
                "--out",
                tmp_path / "o.npz",
            ],
            "found columns ['a', 'b', 'c']",
        ),
        (
            [
                "fit",
                "--features",
                root / "X.npy",
                "--triplets",
                root / "t3.npy",
                "--out",
                tmp_path / "o.npz",
                "--quiet",
            ],
            "needs a contrast set",
        ),
        (
            [
                "apply",
                "--transform",
                root / "naive.npz",
                "--features",
                tmp_path / "vec.npy",
                "--out",
                tmp_path / "z.npy",
            ],
            "2-D matrix",
        ),
        (
            ["score", "--features", root / "X.npy", "--triplets", tmp_path / "missing.npy"],
            "does not exist",
        ),
        (
            ["simulate", "--embedding", root / "H.npy", "--n", -3, "--out", tmp_path / "s.npy"],
            "must be positive",
        ),
        (
            [
                "fit",
                "--features",
                root / "X.npy",
                "--triplets",
                root / "t3.npy",
                "--out",
                tmp_path / "o.txt",
            ],
            "must end in .npz",
        ),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert message in _one_line_error(code, err)
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "z.npy").exists()


def test_usage_error_is_one_line(capsys):
    code, _, err = run(capsys, "fit", "--features", "nope.npy")
    assert "does not exist" in _one_line_error(code, err)


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "glocal"
    assert exe.is_file(), "pip install the package to get the glocal command"
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    for command in ("fit", "apply", "score", "simulate"):
        assert command in result.stdout


UMASK_SCRIPT = """
import argparse, json, os, stat, sys
from pathlib import Path

os.umask(0o027)
import numpy as np
from glocal.commands.simulate import run
from glocal.io import save_npy

out = Path(sys.argv[1])
np.save(out / "H.npy", np.eye(6))
set_umask, modes = os.umask, {}

def forbidden(*args):
    raise AssertionError("os.umask called while writing: it races with other threads")

os.umask = forbidden
run(argparse.Namespace(embedding=out / "H.npy", n=20, out=out / "s.txt", seed=0, temperature=1.0))
save_npy(out / "a.npy", np.ones(3))
set_umask(0o002)  # a later change is seen too (read from /proc on Linux)
save_npy(out / "b.npy", np.ones(3))
for name in ("s.txt", "a.npy", "b.npy"):
    modes[name] = oct(stat.S_IMODE((out / name).stat().st_mode))
print(json.dumps(modes))
"""


def test_written_files_honour_the_umask(tmp_path):
    """Files come out as 0666 less the umask (not mkstemp's 0600), and os.umask is not touched."""
    result = subprocess.run(
        [sys.executable, "-c", UMASK_SCRIPT, str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    modes = json.loads(result.stdout.strip().splitlines()[-1])
    assert modes["s.txt"] == modes["a.npy"] == "0o640"
    if sys.platform == "linux":
        assert modes["b.npy"] == "0o664"
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_fit_that_starts_at_its_floor_says_no_step_ran(tmp_path, capsys):
    """alpha = 1 on features of global mean 0: the start keeps every neighbourhood, its
    held-out objective is 0, and the fit ends before its first step; the summary says why
    instead of failing on an empty step history."""
    problem = planted_problem(n_objects=120, n_features=8, n_dims=3, n_triplets=4000,
                              n_contrast=200, seed=5)  # fmt: skip
    half = problem.X[:60]
    np.save(tmp_path / "X.npy", np.vstack([half, -half]))
    triplets = problem.triplets % 120
    np.save(tmp_path / "train.npy", triplets[:3000])
    np.save(tmp_path / "val.npy", triplets[3000:])
    np.save(tmp_path / "C.npy", problem.contrast)
    code, out, _ = run(capsys, "fit", "--features", tmp_path / "X.npy", "--triplets",
                       tmp_path / "train.npy", "--val-triplets", tmp_path / "val.npy",
                       "--contrast", tmp_path / "C.npy", "--alpha", 1.0, "--out",
                       tmp_path / "t.npz", "--quiet")  # fmt: skip
    assert code == 0 and "kept step 0 of 0" in out and "no step ran" in out
    weights = GlocalTransform.load(tmp_path / "t.npz").weights_
    np.testing.assert_array_equal(weights, weights[0, 0] * np.eye(8, dtype=weights.dtype))


# --- glocal search: a named grid runs the transform its help names ------------------------


@pytest.fixture()
def quick_presets(monkeypatch):
    """The search command's presets with few steps (the named grids cannot set max_steps)."""
    import glocal.commands.search as command

    class Quick(GlocalTransform):
        @classmethod
        def preset(cls, name, **overrides):
            return GlocalTransform.preset(name, max_steps=15, **overrides)

    monkeypatch.setattr(command, "GlocalTransform", Quick)


NAMED_GRIDS = [
    # (grid, with --contrast, what best_transform.npz must record, the selecting rule)
    ("global", False, {"alpha": 0.0, "regularizer": "eye", "bias": True}, "alignment"),
    ("paper-global", False, {"alpha": 0.0, "regularizer": "eye", "optimizer": "sgd"},
     "alignment"),
    ("naive", False, {"alpha": 0.0, "regularizer": "fro", "bias": False, "init_scale": 1e-3},
     "cross_entropy"),
    ("small", True, {"regularizer": "eye"}, "alignment"),
    pytest.param("paper", True, {"regularizer": "eye", "optimizer": "sgd", "tau": (1.0, 0.5)},
                 "alignment", marks=pytest.mark.slow),
]  # fmt: skip


@pytest.mark.parametrize(("grid", "contrast", "recorded", "rule"), NAMED_GRIDS)
def test_each_named_grid_fits_what_its_help_says(
    files, capsys, tmp_path, quick_presets, grid, contrast, recorded, rule
):
    # before: global, paper-global and naive failed without --contrast ("settings with
    # alpha > 0 need a contrast set") and with it recorded alpha 0.1, regularizer eye
    root, problem = files
    np.save(tmp_path / "T.npy", problem.triplets[:3000])
    argv = ["search", "--features", root / "X.npy", "--triplets", tmp_path / "T.npy", "--grid",
            grid, "--cv", 2, "--out", tmp_path / "out", "--scheduler", "serial", "--no-cache",
            "--quiet"] + (["--contrast", root / "C.npy"] if contrast else [])  # fmt: skip
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    params = GlocalTransform.load(tmp_path / "out" / "best_transform.npz").get_params()
    for name, value in recorded.items():
        assert params[name] in value if isinstance(value, tuple) else params[name] == value
    if "alpha" not in recorded:
        assert params["alpha"] > 0
    record = json.loads((tmp_path / "out" / "best_params.json").read_text())
    assert record["scoring"] == rule and out.startswith(f"best ({rule}): ")
    assert len(pd.read_csv(tmp_path / "out" / "cv_results.csv")) == len(resolve_grid(grid))


@pytest.mark.parametrize(
    ("grid", "flags", "message"),
    [
        ("global", ["--preset", "glocal"], "--grid global is a grid of the global preset"),
        ("naive", ["--preset", "naive-l2"], "so --preset naive-l2 cannot run it as named"),
        ('{"preset": "global", "grid": {"alpha": [0.0, 0.5]}}', [],
         "setting 1 has alpha=0.5, but the global preset fixes alpha=0.0"),
        ('{"preset": "naive", "grid": {"regularizer": ["l2"]}}', [],
         "setting 0 has regularizer='l2', but the naive preset fixes regularizer='fro'"),
        ('{"lmbda": [0.1], "alpha": [0.5]}', ["--preset", "global"],
         "setting 0 has alpha=0.5, but the global preset fixes alpha=0.0"),
        ('{"preset": "fancy", "grid": {"lmbda": [0.1]}}', [], "its preset 'fancy' is not one"),
    ],
)  # fmt: skip
def test_a_grid_that_cannot_run_as_named_is_refused(files, capsys, tmp_path, grid, flags,
                                                     message):  # fmt: skip
    root, problem = files
    if grid.startswith("{"):
        (tmp_path / "grid.json").write_text(grid)
        grid = str(tmp_path / "grid.json")
    np.save(tmp_path / "T.npy", problem.triplets[:100])
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(capsys, "search", "--features", root / "X.npy", "--triplets",
                         tmp_path / "T.npy", "--grid", grid, "--out", tmp_path / "out",
                         "--scheduler", "serial", *flags)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
