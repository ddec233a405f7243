"""Notebook parameters by hand: overrides as JSON text, named parameters, absolute paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from companion.pipeline.notebooks import notebook_parameters, parse_overrides
from glocal import data
from glocal.errors import GlocalError
from glocal.io import absolute_env_paths


def test_overrides_as_json_text_equal_a_dict() -> None:
    text = notebook_parameters("03_local_structure", "tiny", '{"ks": [1, 5], "n_queries": 2}')
    given = notebook_parameters("03_local_structure", "tiny", {"ks": [1, 5], "n_queries": 2})
    assert text == given and text["ks"] == [1, 5] and text["n_queries"] == 2
    assert parse_overrides("") == {} == parse_overrides(None)
    with pytest.raises(GlocalError, match="not valid JSON"):
        parse_overrides("{ks: [1]}")
    with pytest.raises(GlocalError, match="object of parameter names"):
        parse_overrides("[1, 2]")
    with pytest.raises(GlocalError, match=r"\['kz'\] are not parameters"):
        notebook_parameters("03_local_structure", "tiny", '{"kz": [1]}')


def test_a_parameter_the_profile_does_not_set_is_named() -> None:
    params = notebook_parameters("07_official_transforms", "quick")
    assert params["download"] is False
    with pytest.raises(GlocalError, match=r"profile 'quick' sets no parameter 'n_train'.*download"):
        params["n_train"]


def test_relative_path_variables_become_absolute(tmp_path: Path) -> None:
    env = {
        "GLOCAL_DATA_DIR": "../shared/data",
        "GLOCAL_CACHE_DIR": "/already/absolute",
        "GLOCAL_MODEL_CONFIGS": os.pathsep.join(["a.json", "/b.json"]),
        "OTHER": "relative",
    }
    changed = absolute_env_paths(env)
    assert env["GLOCAL_DATA_DIR"] == str(Path.cwd().parent / "shared" / "data")
    assert env["GLOCAL_MODEL_CONFIGS"] == os.pathsep.join([str(Path.cwd() / "a.json"), "/b.json"])
    assert env["GLOCAL_CACHE_DIR"] == "/already/absolute" and env["OTHER"] == "relative"
    assert set(changed) == {"GLOCAL_DATA_DIR", "GLOCAL_MODEL_CONFIGS"}


def test_a_missing_relative_mirror_names_the_folder_it_was_read_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GLOCAL_DATA_DIR", "../no-such-mirror")
    with pytest.raises(GlocalError, match=f"working directory {tmp_path}.*absolute path"):
        data.mirror_dir()
