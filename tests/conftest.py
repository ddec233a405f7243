"""Shared fixtures: the offline data folder (GLOCAL_DATA_DIR) and small planted problems."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _shared_data_dir() -> Path | None:
    value = os.environ.get("GLOCAL_DATA_DIR")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline copy of the public data (../shared/data); CI must have it, so no skip there."""
    path = _shared_data_dir()
    if path is None:
        message = "GLOCAL_DATA_DIR is not set to an existing folder (e.g. ../shared/data)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network, an empty private cache, no mirror and downloads allowed (they fail fast)."""
    import socket

    def refuse(*args, **kwargs):
        raise socket.gaierror(-2, "network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("GLOCAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GLOCAL_DATA_DIR", raising=False)
    monkeypatch.delenv("GLOCAL_OFFLINE", raising=False)
    return tmp_path / "cache"
