"""The command line's promise: every failure exits 2 with one line on stderr and writes nothing."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from glocal.cli import main
from glocal.planted import planted_problem


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good and bad inputs in one folder; ``blocked`` is a file, so nothing can go under it."""
    root = tmp_path_factory.mktemp("cli_errors")
    problem = planted_problem(
        n_objects=60, n_features=8, n_dims=3, n_triplets=2000, n_contrast=40, seed=0
    )
    np.save(root / "X.npy", problem.X)
    np.save(root / "H.npy", problem.H)
    np.save(root / "C.npy", problem.contrast)
    np.save(root / "t.npy", problem.triplets)
    np.save(root / "H_huge.npy", problem.H * 1e160)
    nan = problem.H.copy()
    nan[3, 1] = np.nan
    np.save(root / "H_nan.npy", nan)
    np.savez(root / "huge_weights.npz", weights=np.full((8, 8), 3e38, np.float32), mean=0.0,
             std=1.0)  # fmt: skip
    (root / "latin1.txt").write_bytes("caf\xe9\nna\xefve\n".encode("latin-1"))
    np.savez(root / "ok.npz", weights=np.eye(8), mean=0.0, std=1.0)
    np.savez(root / "nan.npz", weights=np.full((8, 8), np.nan), mean=0.0, std=1.0)
    (root / "cut.npz").write_bytes((root / "ok.npz").read_bytes()[:150])
    (root / "empty.npy").write_bytes(b"")
    header = io.BytesIO()  # a valid header that promises 800 PB, and no data
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**10, 10**7)}
    )
    (root / "huge.npy").write_bytes(header.getvalue())
    things = "image1,image2,image3,choice,note\n"
    (root / "latin1.csv").write_bytes((things + "1,2,3,1,caf\xe9\n").encode("latin-1"))
    (root / "big.csv").write_text(things + "1,2,3,1,x\n1,2,1e20,1,y\n")
    (root / "blocked").write_text("a file where a folder is expected\n")
    images = root / "images" / "a"
    images.mkdir(parents=True)
    from PIL import Image

    for k in range(2):
        Image.new("RGB", (8, 8), (k * 90, 0, 0)).save(images / f"{k}.png")
    return root


@dataclass(frozen=True)
class Case:
    """One failing command: its arguments (``{w}`` = the work folder) and what its error names."""

    argv: str
    names: str
    env: dict[str, str] = field(default_factory=dict)
    marks: tuple = ()


NO_CUDA_DEVICE = f"cuda:{torch.cuda.device_count()}"  # one past the last device, or no CUDA
FIT = "fit --features {w}/X.npy --triplets {w}/t.npy --preset global --max-steps 20 --quiet"
CASES = {
    # unreadable inputs
    "fit: empty .npy": Case(
        "fit --features {w}/empty.npy --triplets {w}/t.npy --out {w}/o.npz", "{w}/empty.npy"
    ),
    "fit: .npy header promising 800 PB": Case(
        "fit --features {w}/X.npy --triplets {w}/t.npy --contrast {w}/huge.npy --out {w}/o.npz",
        "{w}/huge.npy",
    ),
    "fit: latin-1 CSV": Case(
        "fit --features {w}/X.npy --triplets {w}/latin1.csv --out {w}/o.npz", "{w}/latin1.csv"
    ),
    "fit: CSV holding 1e20": Case(
        "fit --features {w}/X.npy --triplets {w}/big.csv --out {w}/o.npz", "{w}/big.csv"
    ),
    "apply: empty .npy": Case(
        "apply --transform {w}/ok.npz --features {w}/empty.npy --out {w}/z.npy", "{w}/empty.npy"
    ),
    "apply: NaN weights": Case(
        "apply --transform {w}/nan.npz --features {w}/X.npy --out {w}/z.npy", "{w}/nan.npz"
    ),
    "score: truncated transform": Case(
        "score --features {w}/X.npy --triplets {w}/t.npy --transform {w}/cut.npz", "{w}/cut.npz"
    ),
    "score: huge .npy triplets": Case(
        "score --features {w}/X.npy --triplets {w}/huge.npy", "{w}/huge.npy"
    ),
    "score: latin-1 CSV": Case(
        "score --features {w}/X.npy --triplets {w}/latin1.csv", "{w}/latin1.csv"
    ),
    "simulate: empty embedding": Case(
        "simulate --embedding {w}/empty.npy --n 10 --out {w}/s.npy", "{w}/empty.npy"
    ),
    # devices and numbers
    "fit: --device cuda that is not there": Case(
        f"{FIT} --device {NO_CUDA_DEVICE} --out {{w}}/o.npz", "--device"
    ),
    "fit: unknown --device": Case(f"{FIT} --device tpu0 --out {{w}}/o.npz", "--device"),
    "fit: gLocal without --contrast (CLI words)": Case(
        "fit --features {w}/X.npy --triplets {w}/t.npy --preset glocal --out {w}/o.npz",
        "(--contrast on the command line)",
    ),
    "fit: a start that is not finite (FitDivergedError)": Case(
        f"{FIT} --init-scale 1e30 --out {{w}}/o.npz", "init_scale (1e+30)"
    ),
    "simulate: --temperature nan": Case(
        "simulate --embedding {w}/H.npy --n 10 --temperature nan --out {w}/s.npy", "temperature"
    ),
    "simulate: --temperature inf": Case(
        "simulate --embedding {w}/H.npy --n 10 --temperature inf --out {w}/s.npy", "temperature"
    ),
    "simulate: --n -1": Case("simulate --embedding {w}/H.npy --n -1 --out {w}/s.npy", "--n"),
    "simulate: --seed -1": Case(
        "simulate --embedding {w}/H.npy --n 10 --seed -1 --out {w}/s.npy", "--seed"
    ),
    "simulate: --temperature 1e-320 (logits overflow)": Case(
        "simulate --embedding {w}/H.npy --n 10 --temperature 1e-320 --out {w}/s.npy",
        "raise the temperature (--temperature)",
    ),
    "simulate: an embedding scaled by 1e160": Case(
        "simulate --embedding {w}/H_huge.npy --n 10 --out {w}/s.npy", "rescale the embedding"
    ),
    "simulate: NaN in the embedding": Case(
        "simulate --embedding {w}/H_nan.npy --n 10 --out {w}/s.npy", "{w}/H_nan.npy"
    ),
    "apply: weights of 3e38 overflow float32": Case(
        "apply --transform {w}/huge_weights.npz --features {w}/X.npy --out {w}/z.npy",
        "--transform {w}/huge_weights.npz applied to --features {w}/X.npy gives",
    ),
    "extract: a latin-1 text:FILE": Case(
        "extract --model all-MiniLM-L6-v2 --source text:{w}/latin1.txt --out {w}/f.h5 --quiet",
        "text:{w}/latin1.txt': line 1 is not UTF-8 text (byte 0xe9 at column 4)",
    ),
    "extract: dataset:NAME:SPLIT:PER_CLASS not a number": Case(
        "extract --model resnet18 --random-weights --source dataset:cifar10:train:abc "
        "--out {w}/f.h5 --quiet",
        "PER_CLASS must be a positive whole number",
    ),
    "extract: --workers -1": Case(
        "extract --model resnet18 --random-weights --source {w}/images --workers -1 "
        "--out {w}/f.h5 --quiet",
        "--workers",
    ),
    # outputs that cannot be written: checked before any work
    "fit: unwritable --out": Case(f"{FIT} --out {{w}}/blocked/o.npz", "--out"),
    "apply: unwritable --out": Case(
        "apply --transform {w}/ok.npz --features {w}/X.npy --out {w}/blocked/z.npy", "--out"
    ),
    "simulate: unwritable --out": Case(
        "simulate --embedding {w}/H.npy --n 10 --out {w}/blocked/s.npy", "--out"
    ),
    "extract: unwritable --out": Case(
        "extract --model resnet18 --random-weights --source {w}/images "
        "--out {w}/blocked/f.h5 --quiet",
        "{w}/blocked",
    ),
    "data fetch: offline": Case(
        "data fetch human/vice_embedding", "GLOCAL_OFFLINE", env={"GLOCAL_OFFLINE": "1"}
    ),
    "extract: --device cuda that is not there": Case(
        f"extract --model resnet18 --random-weights --source {{w}}/images --device "
        f"{NO_CUDA_DEVICE} --out {{w}}/f.h5 --quiet",
        "--device",
    ),
    "data fetch: unwritable cache": Case(
        "data fetch things/concepts", "{w}/blocked", env={"GLOCAL_CACHE_DIR": "{w}/blocked/cache"}
    ),
}


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=name, marks=case.marks) for name, case in CASES.items()]
)
def test_every_failure_is_exit_2_one_line_and_no_file(work, case, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise socket.gaierror(-2, "network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(work / "cache"))
    monkeypatch.delenv("GLOCAL_DATA_DIR", raising=False)
    monkeypatch.delenv("GLOCAL_DEBUG", raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value.format(w=work))
    before = _listing(work)
    with warnings.catch_warnings(record=True) as caught:  # a warning is a line on stderr too
        warnings.simplefilter("always")
        try:
            code = main(case.argv.format(w=work).split())
        except SystemExit as exit_:  # argparse usage errors
            code = exit_.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert case.names.format(w=work) in lines[0], lines[0]
    assert not [str(w.message) for w in caught]
    assert _listing(work) == before  # no output, no temp file, no lock file, no cache folder


def test_an_unexpected_error_is_one_line_too(work, capsys, monkeypatch):
    import glocal.commands.score as score

    def broken(*args, **kwargs):
        raise TypeError("something glocal did not expect")

    monkeypatch.setattr(score, "load_triplets", broken)
    monkeypatch.delenv("GLOCAL_DEBUG", raising=False)
    code = main(["score", "--features", str(work / "X.npy"), "--triplets", str(work / "t.npy")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "unexpected TypeError: something glocal did not expect" in err and "GLOCAL_DEBUG" in err
    monkeypatch.setenv("GLOCAL_DEBUG", "1")
    with pytest.raises(TypeError):  # the traceback, for whoever debugs it
        main(["score", "--features", str(work / "X.npy"), "--triplets", str(work / "t.npy")])


def test_score_says_why_constant_features_score_zero(work, capsys):
    np.save(work / "const.npy", np.ones((60, 8)))
    try:
        assert main(["score", "--features", str(work / "const.npy"), "--triplets",
                     str(work / "t.npy")]) == 0  # fmt: skip
    finally:
        (work / "const.npy").unlink()
    out = capsys.readouterr().out
    assert out.startswith("odd-one-out accuracy: 0.0000 (2000 triplets, cosine)")
    assert "all 2000 triplets tie" in out and "ties count as wrong" in out


def test_things_csv_with_txt_suffix_bom_and_quotes_is_read(work, capsys):
    path = work / "choices.txt"
    path.write_text('"image1", "image2", "image3", "choice"\n1, 2, 3, 1\n', encoding="utf-8-sig")
    try:
        code = main(["score", "--features", str(work / "X.npy"), "--triplets", str(path)])
    finally:
        path.unlink()
    assert code == 0 and "(1 triplets, cosine)" in capsys.readouterr().out


@pytest.mark.slow
def test_the_installed_command_prints_one_line_and_exits_2(work):
    """The real console script: nothing swallowed by pytest (warnings, tracebacks)."""
    exe = Path(sys.executable).parent / "glocal"
    argv = [str(exe), "fit", "--features", str(work / "X.npy"), "--triplets"]
    env = {**os.environ, "GLOCAL_CACHE_DIR": str(work / "cache")}
    env.pop("GLOCAL_DEBUG", None)
    before = _listing(work)
    for triplets in ("big.csv", "latin1.csv"):
        result = subprocess.run(
            [*argv, str(work / triplets), "--out", str(work / "o.npz")],
            capture_output=True,
            text=True,
            env=env,
        )
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and triplets in result.stderr, result.stderr
    assert _listing(work) == before
