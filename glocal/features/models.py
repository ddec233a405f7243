"""The model registry: named feature-extraction configs read from data files (models.json)."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from glocal.errors import GlocalError

BUILTIN_FILE = Path(__file__).with_name("models.json")
ENV_CONFIGS = "GLOCAL_MODEL_CONFIGS"

LIBRARIES = ("open_clip", "timm", "torchvision", "text")
TAKES = ("embedding", "cls_token", "flatten", "avg_pool", "token_mean")
INPUTS = ("image", "text")


@dataclass(frozen=True)
class ModelConfig:
    """One feature extractor: a library's model, its weights tag, and which tensor is taken.

    ``module`` names the sub-module whose output is read (for open_clip, ``visual`` is the
    image embedding and ``text`` the text embedding); ``take`` reduces that output to one
    vector per input; ``dim`` is the resulting feature dimension (``None``: not checked).
    ``variant_of`` names the registered model that a shrunk variant stands for (the smoke
    profile's ``tiny-*`` models): its released transform is the variant's reference transform.
    """

    name: str
    library: str
    architecture: str
    module: str
    take: str = "embedding"
    pretrained: str | None = None
    dim: int | None = None
    input: str = "image"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)
    official_transform: bool = False
    variant_of: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        where = f"model config {self.name!r} (module {self.module!r})"
        if not self.name or not self.module or not self.architecture:
            raise GlocalError(f"{where}: 'name', 'module' and 'architecture' must be non-empty")
        if self.library not in LIBRARIES:
            raise GlocalError(f"{where}: library {self.library!r} is not one of {LIBRARIES}")
        if self.take not in TAKES:
            raise GlocalError(f"{where}: take {self.take!r} is not one of {TAKES}")
        if self.input not in INPUTS:
            raise GlocalError(f"{where}: input {self.input!r} is not one of {INPUTS}")
        if self.dim is not None and (not isinstance(self.dim, int) or self.dim <= 0):
            raise GlocalError(f"{where}: dim must be a positive integer or null, got {self.dim!r}")

    @property
    def reference_model(self) -> str | None:
        """The model whose released gLocal transform applies to these features, if any."""
        if self.variant_of:
            return self.variant_of
        return self.name if self.official_transform else None

    @property
    def key(self) -> str:
        """``NAME/MODULE``, the layout of the official transforms' folders."""
        return f"{self.name}/{self.module}"

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (the models.json entry)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, entry: dict[str, Any], where: str = "model config") -> ModelConfig:
        """Build a config from a models.json entry, naming unknown or missing keys."""
        if not isinstance(entry, dict):
            raise GlocalError(
                f"{where}: each entry must be a JSON object, got {type(entry).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise GlocalError(f"{where}: unknown key(s) {unknown}; allowed keys: {sorted(known)}")
        missing = [k for k in ("name", "library", "architecture", "module") if k not in entry]
        if missing:
            raise GlocalError(
                f"{where}: missing key(s) {missing} in entry {entry.get('name', '?')!r}"
            )
        return cls(**entry)


_REGISTRY: dict[tuple[str, str], ModelConfig] = {}
_DEFAULT_MODULE: dict[str, str] = {}
_LOADED = False
_LOCK = threading.RLock()


def read_model_configs(path: str | os.PathLike) -> list[ModelConfig]:
    """Read a models.json-style file (``{"models": [...]}`` or a bare list) into configs."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise GlocalError(f"model config file {path} does not exist") from err
    except json.JSONDecodeError as err:
        raise GlocalError(f"model config file {path} is not valid JSON ({err})") from err
    entries = data.get("models") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise GlocalError(f"model config file {path}: expected a list under 'models'")
    return [ModelConfig.from_dict(e, where=f"model config file {path}") for e in entries]


def _ensure_loaded() -> None:
    """Read the built-in configs (and ``GLOCAL_MODEL_CONFIGS``) once, whichever thread asks
    first; the others wait until the registry is full (they used to see it empty and report
    every model as unknown: two searches started side by side in the quick build)."""
    global _LOADED
    if _LOADED:
        return
    with _LOCK:
        if _LOADED:
            return
        for config in read_model_configs(BUILTIN_FILE):
            _register(config, replace=False)
        for extra in filter(None, os.environ.get(ENV_CONFIGS, "").split(os.pathsep)):
            for config in read_model_configs(extra):
                _register(config, replace=True)
        _LOADED = True


def register_model(config: ModelConfig | dict[str, Any], *, replace: bool = False) -> ModelConfig:
    """Add a model config to the registry (``replace=True`` to redefine an existing one)."""
    _ensure_loaded()
    return _register(config, replace)


def _register(config: ModelConfig | dict[str, Any], replace: bool) -> ModelConfig:
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    key = (config.name, config.module)
    with _LOCK:
        if key in _REGISTRY and not replace and _REGISTRY[key] != config:
            raise GlocalError(
                f"model {config.key!r} is already registered; pass replace=True to redefine it"
            )
        _REGISTRY[key] = config
        _DEFAULT_MODULE.setdefault(config.name, config.module)
    return config


def list_models(input: str | None = None) -> list[ModelConfig]:
    """All registered configs, optionally only those taking ``input`` (``image``/``text``)."""
    _ensure_loaded()
    return [c for c in _REGISTRY.values() if input is None or c.input == input]


def get_config(name: str, module: str | None = None) -> ModelConfig:
    """The config registered as ``name`` (and ``module``; default: the name's first module)."""
    _ensure_loaded()
    if module is None:
        module = _DEFAULT_MODULE.get(name)
    config = _REGISTRY.get((name, module)) if module is not None else None
    if config is None:
        if name in _DEFAULT_MODULE:
            modules = sorted(m for (n, m) in _REGISTRY if n == name)
            raise GlocalError(f"model {name!r} has no module {module!r}; registered: {modules}")
        names = sorted(_DEFAULT_MODULE)
        raise GlocalError(
            f"unknown model {name!r}; registered models: {', '.join(names)}. "
            "Add your own with glocal.features.register_model or GLOCAL_MODEL_CONFIGS"
        )
    return config


def find_by_transform_path(path: str | os.PathLike) -> ModelConfig | None:
    """The config whose ``NAME/MODULE/transform.npz`` layout ends ``path`` (official files)."""
    _ensure_loaded()
    posix = Path(path).as_posix()
    matches = [c for c in _REGISTRY.values() if posix.endswith(f"/{c.key}/transform.npz")]
    return max(matches, key=lambda c: len(c.key)) if matches else None
