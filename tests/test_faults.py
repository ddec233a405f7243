"""Writers under faults: a failure while writing (a full disk) leaves the previous output intact,
names the file, and leaves nothing half-written behind."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from glocal import GlocalTransform
from glocal.cli import main
from glocal.planted import planted_problem


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    problem = planted_problem(
        n_objects=60, n_features=8, n_dims=3, n_triplets=1500, n_contrast=40, seed=0
    )
    np.save(root / "X.npy", problem.X)
    np.save(root / "t.npy", problem.triplets)
    (root / "grid1.json").write_text('{"alpha": [0.0], "lmbda": [0.1], "max_steps": [10]}')
    (root / "grid2.json").write_text('{"alpha": [0.0], "lmbda": [0.01, 1.0], "max_steps": [10]}')
    return root


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _run(capsys, argv: list) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _search(work: Path, grid: str, out: Path) -> list:
    return ["search", "--features", work / "X.npy", "--triplets", work / "t.npy", "--grid",
            work / grid, "--cv", 2, "--out", out, "--scheduler", "serial", "--no-cache",
            "--quiet"]  # fmt: skip


def test_a_search_that_fails_while_writing_leaves_the_previous_results(work, tmp_path, capsys,
                                                                       monkeypatch):  # fmt: skip
    # before: a new cv_results.csv and best_params.json beside the previous best_transform.npz
    out = tmp_path / "out"
    assert _run(capsys, _search(work, "grid1.json", out))[0] == 0
    before = _snapshot(out)
    assert sorted(before) == ["best_params.json", "best_transform.npz", "cv_results.csv"]
    monkeypatch.setattr(GlocalTransform, "save", _disk_full)  # the third file of three
    code, err = _run(capsys, _search(work, "grid2.json", out))
    assert code == 2 and err.count("\n") == 1, err
    assert f"cannot write {out}: No space left on device" in err  # names the output
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left
    monkeypatch.undo()
    assert _run(capsys, _search(work, "grid2.json", out))[0] == 0  # the next run replaces it
    assert json.loads((out / "best_params.json").read_text())["best_params"]["lmbda"] in (
        0.01, 1.0)  # fmt: skip
    assert len((out / "cv_results.csv").read_text().splitlines()) == 3


def test_a_search_refuses_an_out_folder_holding_other_files(work, tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    code, err = _run(capsys, _search(work, "grid1.json", out))
    assert code == 2 and "holds files of its own (notes.txt)" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("command", ["fit", "simulate", "apply"])
def test_single_file_outputs_keep_the_previous_file_and_name_it(work, tmp_path, capsys,
                                                                monkeypatch, command):  # fmt: skip
    out = tmp_path / ("o.npz" if command == "fit" else "o.npy")
    transform = GlocalTransform(alpha=0.0, max_steps=5).fit(np.load(work / "X.npy"),
                                                           np.load(work / "t.npy"))  # fmt: skip
    transform.save(tmp_path / "t.npz")
    argv = {
        "fit": ["fit", "--features", work / "X.npy", "--triplets", work / "t.npy", "--preset",
                "global", "--max-steps", 5, "--quiet", "--out", out],
        "simulate": ["simulate", "--embedding", work / "X.npy", "--n", 50, "--out", out],
        "apply": ["apply", "--transform", tmp_path / "t.npz", "--features", work / "X.npy",
                  "--out", out],
    }[command]  # fmt: skip
    out.write_bytes(b"the previous run's file")
    monkeypatch.setattr(np, "savez", _disk_full)
    monkeypatch.setattr(np, "save", _disk_full)
    code, err = _run(capsys, argv)
    assert code == 2 and err.count("\n") == 1, err
    assert f"cannot write {out}: No space left on device; free space" in err  # was "OSError:
    # [Errno 28] No space left on device", naming no file
    assert out.read_bytes() == b"the previous run's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({out.name, "t.npz"})


# --- extraction: a failure leaves nothing the next run would not use -------------------------


@pytest.fixture(scope="module")
def tiny():
    from _features import TINY_TIMM

    from glocal.features import load_model

    return load_model(TINY_TIMM, pretrained=False, device="cpu", seed=0)


def _images(root: Path, corrupt_first: bool) -> Path:
    from _features import make_image_folder

    folder = make_image_folder(root, classes=2, per_class=3)
    if corrupt_first:
        (folder / "class_0" / "img_0.png").write_bytes(b"not a png")
    return folder


def test_a_failed_extraction_leaves_no_folder_lock_or_empty_partial(tiny, tmp_path):
    # before: new/sub/, new/sub/f.h5.lock and a 0-row new/sub/f.h5.partial stayed
    from _features import one_torch_thread

    from glocal.errors import GlocalError
    from glocal.features import extract_features, image_folder

    images = _images(tmp_path / "images", corrupt_first=True)
    with one_torch_thread(), pytest.raises(GlocalError, match="img_0.png could not be read"):
        extract_features(tiny, image_folder(images), out=tmp_path / "new" / "sub" / "f.h5",
                         batch_size=2, num_workers=0, verbose=0)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_a_failure_after_some_rows_keeps_the_partial_to_resume_and_drops_the_lock(tiny, tmp_path):
    from _features import one_torch_thread

    from glocal.features import extract_features, image_folder

    images = image_folder(_images(tmp_path / "images", corrupt_first=False))
    out = tmp_path / "out" / "f.h5"
    encode, calls = tiny.encode, {"n": 0}

    def crash_on_second_batch(batch, amp=False):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C
        return encode(batch, amp=amp)

    options = {"out": out, "batch_size": 2, "chunk_size": 2, "num_workers": 0, "verbose": 0}
    tiny.encode = crash_on_second_batch
    try:
        with one_torch_thread(), pytest.raises(KeyboardInterrupt):
            extract_features(tiny, images, **options)
    finally:
        del tiny.encode
    assert sorted(p.name for p in out.parent.iterdir()) == ["f.h5.partial"]  # 2 rows kept
    with one_torch_thread():
        store = extract_features(tiny, images, **options)
    assert store.metadata["resumed_from"] == 2 and store.n == 6


def test_a_lock_removed_by_its_failing_holder_still_excludes(tmp_path):
    """Waiters on a lock file that its holder removed lock the current file: never two holders
    at once, whether they waited on the old file or came after the removal."""
    import threading
    import time

    from glocal.io import file_lock

    target = tmp_path / "store.h5"
    holders, most, errors = [0], [0], []
    guard = threading.Lock()

    def hold(fail: bool) -> None:
        try:
            with file_lock(target, remove_on_error=True):
                with guard:
                    holders[0] += 1
                    most[0] = max(most[0], holders[0])
                time.sleep(0.02)
                with guard:
                    holders[0] -= 1
                if fail:
                    raise RuntimeError("the writer failed")
        except RuntimeError:
            pass
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=hold, args=(i % 2 == 0,)) for i in range(24)]
    for thread in threads:
        thread.start()
        time.sleep(0.003)
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and most[0] == 1


def test_an_overwrite_that_runs_out_of_disk_keeps_the_previous_store(tiny, tmp_path, monkeypatch):
    import h5py
    from _features import one_torch_thread

    from glocal.features import FeatureStore, extract_features, image_folder
    from glocal.io import NotWritableError

    images = image_folder(_images(tmp_path / "images", corrupt_first=False))
    out = tmp_path / "out" / "f.h5"
    options = {"out": out, "batch_size": 2, "chunk_size": 2, "num_workers": 0, "verbose": 0}
    with one_torch_thread():
        before = extract_features(tiny, images, **options)
    kept = out.read_bytes()
    write = h5py.Dataset.__setitem__

    def full_disk(self, key, value):
        if self.name == "/features":  # what h5py raises: an OSError that names no file
            raise OSError("Can't write data (file write failed: errno = 28, error message = "
                          "'No space left on device')")  # fmt: skip
        write(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", full_disk)
    with one_torch_thread(), pytest.raises(NotWritableError) as caught:
        extract_features(tiny, images, overwrite=True, **options)
    assert f"cannot write feature store {out}.partial (chunk)" in str(caught.value)
    assert "No space left on device" in str(caught.value)
    assert out.read_bytes() == kept and sorted(p.name for p in out.parent.iterdir()) == ["f.h5"]
    monkeypatch.undo()
    assert FeatureStore.open(out).metadata["sha256"] == before.metadata["sha256"]
