"""Helpers for the feature-extraction tests: tiny random-weight model configs and image folders."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from glocal.features import ModelConfig

#: A two-layer open_clip ViT at 32 px (embedding 32): the real open_clip code path, fast on CPU.
TINY_CLIP = ModelConfig(
    name="tiny-clip",
    library="open_clip",
    architecture="ViT-B-32",
    module="visual",
    take="embedding",
    dim=32,
    model_kwargs={
        "embed_dim": 32,
        "vision_cfg": {
            "image_size": 32,
            "layers": 2,
            "width": 64,
            "patch_size": 8,
            "head_width": 32,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 64,
            "heads": 2,
            "layers": 2,
        },
    },
)

#: timm's test ViT at 32 px, CLS token of the final norm (as the DINO configs).
TINY_TIMM = ModelConfig(
    name="tiny-timm",
    library="timm",
    architecture="test_vit",
    module="norm",
    take="cls_token",
    dim=64,
    model_kwargs={"img_size": 32},
    preprocess={"input_size": [3, 32, 32]},
)


def random_image(rng: np.random.Generator, size: tuple[int, int] = (40, 48)) -> Image.Image:
    """A small RGB image of random pixels."""
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def make_image_folder(root: Path, classes: int = 3, per_class: int = 4, seed: int = 0) -> Path:
    """ROOT/class_k/img_j.png with random pixels; returns ROOT."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        folder = root / f"class_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            random_image(rng).save(folder / f"img_{j}.png")
    return root


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one CPU thread: tiny models on a busy 2-core machine are ~40× faster so
    (OpenMP threads spin-wait for each other); the previous setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
