"""The result notebooks as data: discovery, profile parameters and cache keys."""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glocal.errors import GlocalError

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
RUNNER_PARAMETERS = ("profile", "results_dir", "overrides")
DEFAULTS_FILE = "defaults.json"
INHERIT_KEY = "inherit_defaults"
INPUTS_FIELD = "metadata.glocal.inputs"
OPTIONAL_INPUTS_FIELD = "metadata.glocal.optional_inputs"


@dataclass(frozen=True)
class Notebook:
    """One result notebook ``NN_slug.ipynb`` and the folder of its profile file."""

    path: Path
    profiles_dir: Path

    @property
    def name(self) -> str:
        """``NN_slug``: the notebook's file stem, also the name of its outputs."""
        return self.path.stem

    @property
    def number(self) -> str:
        """The two-digit prefix ``NN``."""
        return self.name[:2]

    @property
    def profile_file(self) -> Path:
        """``notebooks/profiles/NN_slug.json``."""
        return self.profiles_dir / f"{self.name}.json"


def discover(
    notebooks_dir: str | os.PathLike, profiles_dir: str | os.PathLike | None = None
) -> list[Notebook]:
    """The notebooks ``NN_slug.ipynb`` in ``notebooks_dir``, sorted by name."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise GlocalError(
            f"notebooks folder {folder} does not exist; run from the repository root or pass "
            "--root / --notebooks-dir"
        )
    profiles = Path(profiles_dir) if profiles_dir is not None else folder / "profiles"
    found = sorted(folder.glob(NOTEBOOK_GLOB))
    if not found:
        raise GlocalError(f"{folder}: no notebooks named NN_slug.ipynb (e.g. 01_alignment_table)")
    return [Notebook(path, profiles) for path in found]


def select(notebooks: list[Notebook], only: list[str] | None) -> list[Notebook]:
    """The notebooks named by ``--only`` (``5``, ``05`` or ``05_few_shot``); all when empty."""
    if not only:
        return list(notebooks)
    chosen: list[Notebook] = []
    for want in only:
        key = want.removesuffix(".ipynb")
        key = key.zfill(2) if key.isdigit() else key
        hits = [nb for nb in notebooks if key in (nb.number, nb.name)]
        if not hits:
            names = ", ".join(nb.name for nb in notebooks)
            raise GlocalError(f"--only {want}: no such notebook; choose from {names}")
        chosen += [nb for nb in hits if nb not in chosen]
    return sorted(chosen, key=lambda nb: nb.name)


def not_utf8(path: Path, what: str, err: UnicodeDecodeError) -> GlocalError:
    """The one-line error for a JSON file that is not UTF-8 text (e.g. saved as latin-1)."""
    byte = err.object[err.start : err.start + 1].hex()
    return GlocalError(
        f"{what} {path}: not UTF-8 text (byte 0x{byte} at offset {err.start}); save it as "
        "UTF-8, which JSON files must be"
    )


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise not_utf8(path, what, err) from None
    except json.JSONDecodeError as err:
        raise GlocalError(
            f"{what} {path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from err


def _profile_object(file: Path, profiles: Any, profile: str, what: str) -> dict[str, Any]:
    if not isinstance(profiles, dict):
        raise GlocalError(f"{what} {file}: expected an object {{profile: {{parameters}}}}")
    params = profiles.get(profile, {})
    if not isinstance(params, dict):
        raise GlocalError(f"{what} {file}: key {profile!r} must be an object of parameters")
    return params


def load_parameters(notebook: Notebook, profile: str) -> dict[str, Any]:
    """The parameters of ``notebook`` in ``profile``: the shared defaults, then its own file.

    ``profiles/defaults.json`` holds the parameters most notebooks share, per profile; the
    notebook's ``profiles/NN_slug.json`` holds only what differs, and ``"inherit_defaults":
    false`` there leaves the shared ones out (for notebooks that do not use them).
    """
    file = notebook.profile_file
    if not file.is_file():
        raise GlocalError(
            f"profile file {file} is missing: add it with one object of parameters per "
            f'profile, e.g. {{"quick": {{...}}, "paper": {{...}}, "tiny": {{...}}}}'
        )
    profiles = _read_json(file, "profile file")
    own = _profile_object(file, profiles, profile, "profile file")
    if profile not in profiles:
        have = ", ".join(sorted(k for k in profiles if k != INHERIT_KEY)) or "none"
        raise GlocalError(
            f"profile file {file}: no key {profile!r} (has: {have}); add a {profile!r} object "
            f"with the parameters of {notebook.path.name} for that profile"
        )
    shared: dict[str, Any] = {}
    defaults = notebook.profiles_dir / DEFAULTS_FILE
    if profiles.get(INHERIT_KEY, True) and defaults.is_file():
        shared = _profile_object(defaults, _read_json(defaults, "defaults file"), profile,
                                 "defaults file")  # fmt: skip
    params = {**shared, **own}
    clash = [key for key in RUNNER_PARAMETERS if key in params]
    if clash:
        raise GlocalError(
            f"profile file {file}: key {profile!r} sets {', '.join(clash)}, which the runner "
            "sets itself; remove it"
        )
    return params


def own_parameters(notebook: Notebook, profile: str) -> list[str]:
    """The parameter names that the notebook's own profile file sets for ``profile``."""
    profiles = _read_json(notebook.profile_file, "profile file")
    return list(_profile_object(notebook.profile_file, profiles, profile, "profile file"))


def notebook_code(nb: dict[str, Any]) -> str:
    """The source of every code cell that is not the parameters cell."""
    return "\n".join(
        _cell_source(cell)
        for cell in nb["cells"]
        if cell.get("cell_type") == "code"
        and "parameters" not in cell.get("metadata", {}).get("tags", [])
    )


def parse_overrides(overrides: dict[str, Any] | str | None) -> dict[str, Any]:
    """``overrides`` as a dict: a dict as it is, JSON text parsed, None as ``{}``."""
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        try:
            overrides = json.loads(overrides) if overrides.strip() else {}
        except json.JSONDecodeError as err:
            raise GlocalError(
                f"overrides {overrides!r}: not valid JSON ({err.msg}); pass a JSON object, e.g. "
                """-p overrides '{"n_train": 100000}'"""
            ) from err
    if not isinstance(overrides, dict):
        raise GlocalError(
            f"overrides must be an object of parameter names and values, got "
            f"{type(overrides).__name__} {overrides!r}"
        )
    return overrides


class Parameters(dict[str, Any]):
    """A notebook's resolved parameters; a name its profile does not set is a clear error."""

    def __init__(self, values: dict[str, Any], notebook: str, profile: str) -> None:
        super().__init__(values)
        self.notebook, self.profile = notebook, profile

    def __missing__(self, key: str) -> Any:
        raise GlocalError(
            f"{self.notebook}: profile {self.profile!r} sets no parameter {key!r} "
            f"(notebooks/profiles/{DEFAULTS_FILE}, then {self.notebook}.json); add it to the "
            f"{self.profile!r} object there. It sets: {', '.join(sorted(self))}"
        )


def repository_notebooks_dir() -> Path:
    """``notebooks/`` of the checkout this companion belongs to."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def notebook_parameters(
    name: str, profile: str, overrides: dict[str, Any] | str | None = None
) -> Parameters:
    """What a notebook's second cell calls: its ``profile`` parameters with ``overrides`` on top.

    Run by the runner, ``overrides`` already holds every parameter; run by hand (``papermill
    -p profile paper``), the profile files of this checkout supply them. ``overrides`` may be
    a JSON object as text, which is what ``papermill -p overrides '{"n_train": 1000}'`` passes.
    """
    overrides = parse_overrides(overrides)
    folder = repository_notebooks_dir()
    matches = [nb for nb in discover(folder) if nb.name == name]
    if not matches:
        raise GlocalError(f"no notebook {name}.ipynb in {folder}")
    params = load_parameters(matches[0], profile)
    unknown = sorted(set(overrides or {}) - set(params))
    if unknown:
        raise GlocalError(
            f"overrides {unknown} are not parameters of {name} in profile {profile!r}; "
            f"known: {sorted(params)}"
        )
    return Parameters({**params, **(overrides or {})}, name, profile)


def read_notebook(path: Path) -> dict[str, Any]:
    """The notebook's JSON (nbformat 4), with a clear error when it is not one."""
    nb = _read_json(path, "notebook")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise GlocalError(f"notebook {path}: not an nbformat 4 notebook (no 'cells' list)")
    return nb


def _cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def source_hash(nb: dict[str, Any]) -> str:
    """sha256 over the type and source of every cell (outputs and metadata are ignored)."""
    digest = hashlib.sha256()
    for cell in nb["cells"]:
        digest.update(json.dumps([cell.get("cell_type"), _cell_source(cell)]).encode())
    return digest.hexdigest()


def declared_inputs(nb: dict[str, Any], path: Path, optional: bool = False) -> list[str]:
    """The registry names listed in the notebook's ``metadata.glocal.inputs`` (may be none).

    ``optional=True``: those of ``metadata.glocal.optional_inputs`` instead, the files the
    notebook reports as absent rather than failing without them (page 7's large transforms).
    """
    field = OPTIONAL_INPUTS_FIELD if optional else INPUTS_FIELD
    meta = nb.get("metadata", {}).get("glocal", {})
    inputs = meta.get(field.rsplit(".", 1)[1], []) if isinstance(meta, dict) else None
    if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
        raise GlocalError(
            f"notebook {path}: field {field} must be a list of registry names "
            "(see `glocal data list`)"
        )
    return inputs


def _input_digest(name: str) -> str:
    """The sha256 of a registry entry: pinned in the registry, else of the local file, if any."""
    from glocal import data

    entries = {entry.name: entry for entry in data.registry()}
    entry = entries[name]
    if entry.served.sha256:
        return entry.served.sha256
    if entry.kind != "file":
        return f"{entry.kind}:{entry.served.path}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return data.sha256sum(data.path(name, allow_unpinned=True))  # hashing is not serving
    except GlocalError:
        return f"absent:{entry.served.path}"


def input_hashes(nb: dict[str, Any], path: Path) -> dict[str, str]:
    """``{registry name: sha256}`` of the notebook's declared input data."""
    from glocal import data

    known = [entry.name for entry in data.registry()]
    names = []
    for field, optional in ((INPUTS_FIELD, False), (OPTIONAL_INPUTS_FIELD, True)):
        names += declared_inputs(nb, path, optional)
        for name in declared_inputs(nb, path, optional):
            if name in known:
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise GlocalError(
                f"notebook {path}: field {field} names {name!r}, which is not in the data "
                f"registry; {hint}see `glocal data list`"
            )
    return {name: _input_digest(name) for name in names}


#: The packages whose files every notebook and the book depend on.
KEYED_PACKAGES = ("glocal", "companion")


def package_roots() -> dict[str, Path]:
    """``{package: folder}`` of the imported ``glocal`` and ``companion`` packages."""
    roots = {}
    for name in KEYED_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise GlocalError(f"cannot find the {name} package to hash; reinstall glocal")
        roots[name] = Path(next(iter(spec.submodule_search_locations))).resolve()
    return roots


def package_files() -> list[tuple[str, Path]]:
    """Every file of the keyed packages as ``(package/relative/path, path)``, sorted: sources,
    data files and markers alike; byte code (``__pycache__``, ``.pyc``) and hidden files
    (editor swap files, locks) are left out."""
    files = []
    for name, root in package_roots().items():
        for path in root.rglob("*"):
            rel = path.relative_to(root)
            if (
                any(part == "__pycache__" or part.startswith(".") for part in rel.parts)
                or path.suffix in (".pyc", ".pyo")
                or not path.is_file()
            ):
                continue
            files.append((f"{name}/{rel.as_posix()}", path))
    return sorted(files)


def package_hash() -> str:
    """sha256 over every file of the ``glocal`` and ``companion`` packages (names and
    contents; :func:`package_files`), read anew on each call, so an edit to the library
    is seen by the next key."""
    digest = hashlib.sha256()
    for name, path in package_files():
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cache_key(notebook: Notebook, parameters: dict[str, Any]) -> dict[str, Any]:
    """The cache key of one run: its components and ``key``, the sha256 over all of them."""
    from glocal import __version__

    nb = read_notebook(notebook.path)
    parts: dict[str, Any] = {
        "source": source_hash(nb),
        "parameters": parameters,
        "glocal_version": __version__,
        "package": package_hash(),
        "inputs": input_hashes(nb, notebook.path),
    }
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return {"key": hashlib.sha256(blob.encode()).hexdigest(), **parts}


def check_parameters_cell(nb: dict[str, Any], path: Path) -> None:
    """Require a code cell tagged ``parameters`` (papermill injects its values after it)."""
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and "parameters" in tags:
            return
    raise GlocalError(
        f"notebook {path}: no code cell tagged 'parameters'; tag the first code cell "
        "(which defines profile, results_dir, seed, ...) with 'parameters'"
    )
