"""``FeatureModel`` and ``load_model``: a registered config built into a feature encoder."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import torch

from glocal._device import resolve_device
from glocal.errors import GlocalError
from glocal.features.backends import BACKENDS, Built
from glocal.features.models import ModelConfig, get_config
from glocal.features.store import model_folder


def reduce_output(output: torch.Tensor, take: str, where: str) -> torch.Tensor:
    """Turn a module's output into one vector per input, as the config's ``take`` says."""
    if not isinstance(output, torch.Tensor):
        raise GlocalError(f"{where}: the module returned {type(output).__name__}, not a tensor")
    shape = tuple(output.shape)
    if take == "embedding" and output.ndim == 2:
        return output
    if take == "cls_token" and output.ndim == 3:
        return output[:, 0]
    if take == "token_mean" and output.ndim == 3:
        return output.mean(dim=1)
    if take == "avg_pool" and output.ndim == 4:
        return output.mean(dim=(2, 3))
    if take == "flatten" and output.ndim >= 2:
        return output.flatten(start_dim=1)
    raise GlocalError(
        f"{where}: take {take!r} does not fit the module output of shape {shape}; "
        "use embedding for (batch, dim), cls_token/token_mean for (batch, tokens, dim), "
        "avg_pool for (batch, channels, h, w), or flatten"
    )


class FeatureModel:
    """A model that maps a batch of preprocessed images (or a list of strings) to features.

    Build it with :func:`load_model`. ``preprocess`` (images only) maps one PIL image to the
    tensor the network expects; ``encode`` returns float32 features of shape (batch, dim).
    """

    def __init__(
        self,
        config: ModelConfig,
        built: Built,
        *,
        pretrained: bool,
        seed: int,
        device: torch.device,
    ):
        self.config = config
        self.network = built.network
        self.preprocess = built.preprocess
        self.preprocess_repr = built.preprocess_repr
        self.pretrained = pretrained
        self.seed = seed
        self.device = device
        self._run = built.run

    def __repr__(self) -> str:
        weights = self.config.pretrained if self.pretrained else f"random (seed {self.seed})"
        return (
            f"FeatureModel({self.config.key!r}, weights={weights!r}, device={str(self.device)!r})"
        )

    @property
    def model_id(self) -> str:
        """The store's folder name: the model name, plus ``@random-seedN`` for random weights."""
        return model_folder(self.config.name, self.pretrained, self.seed)

    @property
    def input(self) -> str:
        """``"image"`` or ``"text"``."""
        return self.config.input

    def encode(self, batch: torch.Tensor | Sequence[str], amp: bool = False) -> torch.Tensor:
        """Features of a batch, float32 on the CPU (batch, dim); ``amp``: fp16 autocast on CUDA."""
        if isinstance(batch, torch.Tensor):
            batch = batch.to(self.device, non_blocking=True)
        use_amp = amp and self.device.type == "cuda"
        autocast = (
            torch.autocast(device_type="cuda", dtype=torch.float16)
            if use_amp
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            output = self._run(batch)
        features = reduce_output(output, self.config.take, f"model {self.config.key!r}")
        if self.config.dim is not None and features.shape[1] != self.config.dim:
            raise GlocalError(
                f"model {self.config.key!r} gives {features.shape[1]} features per input but its "
                f"config says dim={self.config.dim}; fix the config's module/take/dim"
            )
        if self.device.type == "meta":
            return features
        return features.float().cpu()

    def provenance(self) -> dict[str, Any]:
        """What made the features: model id, module, weights, preprocessing, config."""
        c = self.config
        return {
            "model": c.name,
            "module": c.module,
            "library": c.library,
            "architecture": c.architecture,
            "pretrained": c.pretrained if self.pretrained else None,
            "weights": "pretrained" if self.pretrained else "random",
            "seed": None if self.pretrained else self.seed,
            "take": c.take,
            "input": c.input,
            "preprocessing": self.preprocess_repr,
            "config": json.dumps(c.to_dict(), sort_keys=True),
        }


def load_model(
    name: str | ModelConfig,
    pretrained: bool = True,
    device: str | torch.device = "auto",
    *,
    module: str | None = None,
    seed: int = 0,
) -> FeatureModel:
    """Build a registered model (or a ``ModelConfig``) as a :class:`FeatureModel`.

    ``pretrained=False`` gives random weights, initialised from ``seed`` (nothing is
    downloaded). Pretrained weights load through the library's own cache and download on
    first use; without internet a ``DataUnavailableError`` names the weights. ``device="meta"``
    builds the model without memory, for shape checks.
    """
    config = name if isinstance(name, ModelConfig) else get_config(name, module)
    torch_device = resolve_device(device)
    if torch_device.type == "meta" and pretrained:
        raise GlocalError("device='meta' builds shapes only; use it with pretrained=False")
    backend = BACKENDS[config.library]
    meta = torch.device("meta") if torch_device.type == "meta" else contextlib.nullcontext()
    with torch.random.fork_rng(devices=[]), meta:
        torch.manual_seed(seed)
        built = backend(config, pretrained, torch_device)
    return FeatureModel(config, built, pretrained=pretrained, seed=seed, device=torch_device)
