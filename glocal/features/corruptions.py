"""ImageNet-C-style corruptions of an image dataset, deterministic per item (``imagecorruptions``).

The corruptions are those of Hendrycks & Dietterich (2019) as the ``imagecorruptions`` package
(Michaelis et al., 2019) implements them: the 15 benchmark corruptions at severities 1-5. It is
an optional extra (``pip install 'glocal[shift]'``), imported only when an image is corrupted.
As for ImageNet-C, each image is first resized (shorter side ``size / 0.875``) and centre-cropped
to ``size`` pixels; severity 0 is that clean image. Every item is corrupted with its own seed
(from the dataset's seed, the corruption, the severity and the item's index), so a dataset
gives the same pixels on every read and in every process.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from glocal.errors import GlocalError

#: The 15 corruptions of the ImageNet-C benchmark, in the benchmark's order.
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
SEVERITIES = (1, 2, 3, 4, 5)
#: The store dataset of the corrupted images; its split is ``CORRUPTION-SEVERITY`` or ``clean``.
DATASET = "imagenet-c"
EXTRA_HELP = (
    "the ImageNet-C corruptions need the optional package imagecorruptions: "
    "pip install 'glocal[shift]' (or pip install imagecorruptions)"
)


def _numpy_with_float_() -> types.ModuleType:
    """numpy as a module whose ``float_`` is ``float64`` (numpy 2 removed the alias)."""
    proxy = types.ModuleType("numpy")
    proxy.__dict__.update(np.__dict__)
    proxy.float_ = np.float64  # type: ignore[attr-defined]
    return proxy


def _gaussian_with_channel_axis(gaussian: Any) -> Any:
    """scikit-image's ``gaussian`` taking the removed ``multichannel=True`` as ``channel_axis``."""

    def wrapped(image: Any, *args: Any, multichannel: bool | None = None, **kwargs: Any) -> Any:
        if multichannel:
            kwargs.setdefault("channel_axis", -1)
        return gaussian(image, *args, **kwargs)

    return wrapped


def _skimage_with_seeded_noise(sk: Any) -> types.ModuleType:
    """scikit-image whose ``util.random_noise`` draws its generator from ``np.random`` (seeded
    per item), where it would otherwise take fresh entropy and never repeat."""
    util = types.ModuleType("skimage.util")
    util.__dict__.update(sk.util.__dict__)
    noise = sk.util.random_noise

    def random_noise(image: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("rng") is None and kwargs.get("seed") is None:
            kwargs["rng"] = int(np.random.randint(0, 2**31 - 1))  # noqa: NPY002 (seeded)
        return noise(image, *args, **kwargs)

    util.random_noise = random_noise  # type: ignore[attr-defined]
    proxy = types.ModuleType("skimage")
    proxy.__dict__.update(sk.__dict__)
    proxy.util = util  # type: ignore[attr-defined]
    proxy._glocal_adapted = True  # type: ignore[attr-defined]
    return proxy


def load_corrupt() -> Any:
    """``imagecorruptions.corrupt``, made to run on current numpy and scikit-image.

    imagecorruptions 1.1.2 (its latest release) imports ``pkg_resources`` (gone from recent
    setuptools) to find its frost images, and two corruptions call APIs that numpy 2 and
    scikit-image 0.19 removed: ``fog`` uses ``np.float_`` and ``glass_blur`` passes
    ``multichannel=True``. The adapters here give each the equivalent current call, inside that
    package's module only (numpy itself is not changed), so every corruption computes what the
    package computes on the versions it was written for. ``impulse_noise`` draws through
    scikit-image's ``random_noise``, which takes fresh entropy unless given a generator: here it
    gets one drawn from ``np.random``, so that seeding ``np.random`` fixes every corruption.

    Raises
    ------
    GlocalError
        When imagecorruptions is not installed (naming the ``shift`` extra).
    """
    try:
        importlib.import_module("pkg_resources")
    except ImportError:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(module: str, path: str) -> str:
            return str(Path(sys.modules[module].__file__ or ".").parent / path)

        shim.resource_filename = resource_filename  # type: ignore[attr-defined]
        sys.modules.setdefault("pkg_resources", shim)
    try:
        with warnings.catch_warnings():  # its own imports of deprecated scipy/skimage names
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module("imagecorruptions.corruptions")
            package = importlib.import_module("imagecorruptions")
    except ImportError as err:
        raise GlocalError(EXTRA_HELP) from err
    if not hasattr(np, "float_") and getattr(module, "np", np) is np:
        module.np = _numpy_with_float_()  # type: ignore[attr-defined]
    sk = getattr(module, "sk", None)
    if sk is not None and not getattr(sk, "_glocal_adapted", False):
        module.sk = _skimage_with_seeded_noise(sk)  # type: ignore[attr-defined]
    gaussian = getattr(module, "gaussian", None)
    if gaussian is not None and not getattr(gaussian, "_glocal_adapted", False):
        adapted = _gaussian_with_channel_axis(gaussian)
        adapted._glocal_adapted = True
        module.gaussian = adapted  # type: ignore[attr-defined]
    return package.corrupt


def check_corruption(corruption: str, severity: int) -> None:
    """Refuse a corruption outside :data:`CORRUPTIONS` or a severity outside 0-5 (0: clean)."""
    if corruption not in CORRUPTIONS and not (corruption == "clean" and severity == 0):
        raise GlocalError(f"unknown corruption {corruption!r}; choose one of {list(CORRUPTIONS)}")
    if severity not in (0, *SEVERITIES) or (severity == 0) != (corruption == "clean"):
        raise GlocalError(
            f"corruption {corruption!r}: severity must be 1-5 (0 only for 'clean'), "
            f"got {severity!r}"
        )


def corruption_split(corruption: str, severity: int) -> str:
    """The store split of a corruption: ``CORRUPTION-SEVERITY``, or ``clean`` for severity 0."""
    check_corruption(corruption, severity)
    return "clean" if severity == 0 else f"{corruption}-{severity}"


def parse_split(split: str) -> tuple[str, int]:
    """(corruption, severity) of a store split of :func:`corruption_split`."""
    if split == "clean":
        return "clean", 0
    corruption, _, severity = split.rpartition("-")
    if not severity.isdigit():
        raise GlocalError(f"{DATASET} split {split!r}: expected CORRUPTION-SEVERITY or clean")
    check_corruption(corruption, int(severity))
    return corruption, int(severity)


def _resize_crop(image: Any, size: int | None) -> Any:
    """ImageNet-C's preprocessing: shorter side to ``size / 0.875``, centre crop ``size``."""
    if size is None:
        return image
    from PIL import Image

    short = round(size / 0.875)
    w, h = image.size
    scale = short / min(w, h)
    image = image.resize((max(short, round(w * scale)), max(short, round(h * scale))),
                         Image.Resampling.BILINEAR)  # fmt: skip
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


class CorruptedImages:
    """An image dataset with one corruption at one severity applied to every image.

    ``dataset`` is map-style with items (PIL image, label), e.g. a class-balanced ImageNet
    validation subset of :func:`glocal.data.downstream_dataset`; its ``ids``, ``classes`` and
    ``targets`` are kept, so that the stores of every corruption pair item by item. Item i is
    corrupted with ``np.random`` seeded from (``seed``, corruption, severity, i); the global
    numpy state is restored afterwards. It pickles without the package (so it can travel to
    the processes of a sharded extraction); each process loads it on first use.

    Parameters
    ----------
    dataset : map-style dataset
        The clean images, ``dataset[i] -> (PIL image, label)``.
    corruption : str
        One of :data:`CORRUPTIONS`, or ``"clean"`` with severity 0.
    severity : int
        1-5 (0 for ``"clean"``).
    seed : int, default=0
        Seeds the corruptions.
    size : int or None, default=224
        Resize and centre-crop to this many pixels first (None: keep the image as it is).
    """

    def __init__(
        self,
        dataset: Any,
        corruption: str,
        severity: int,
        seed: int = 0,
        size: int | None = 224,
    ) -> None:
        check_corruption(corruption, severity)
        if size is not None and size < 8:
            raise GlocalError(f"size must be at least 8 pixels or None, got {size}")
        self.dataset = dataset
        self.corruption, self.severity, self.seed, self.size = corruption, severity, seed, size
        self.ids = getattr(dataset, "ids", None)
        self.classes = getattr(dataset, "classes", None)
        self.targets = getattr(dataset, "targets", None)
        base = getattr(dataset, "description", "") or type(dataset).__name__
        self.description = (
            f"CorruptedImages({base}, {corruption!r}, severity={severity}, seed={seed}, "
            f"size={size})"
        )
        if severity:
            load_corrupt()  # a missing package fails here, with the extra to install
        # No reference to the package's function is kept: the dataset is pickled to the workers
        # of a sharded extraction, and each process loads (and adapts) the package itself.

    def __len__(self) -> int:
        return len(self.dataset)

    def __repr__(self) -> str:
        return self.description

    def item_seed(self, index: int) -> int:
        """The seed of item ``index`` (a 32-bit value for ``np.random.seed``)."""
        stream = CORRUPTIONS.index(self.corruption) + 1 if self.corruption in CORRUPTIONS else 0
        key = [self.seed, stream, self.severity, int(index)]
        return int(np.random.SeedSequence(key).generate_state(1)[0])

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        image, label = self.dataset[index]
        image = _resize_crop(image.convert("RGB"), self.size)
        if self.severity == 0:
            return image, label
        corrupt = load_corrupt()
        # imagecorruptions draws from numpy's global generator: seed it, then restore it
        state = np.random.get_state()  # noqa: NPY002
        try:
            np.random.seed(self.item_seed(index))  # noqa: NPY002
            pixels = corrupt(
                np.asarray(image), severity=self.severity, corruption_name=self.corruption
            )
        finally:
            np.random.set_state(state)  # noqa: NPY002
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), label


def corruption_source(
    dataset: Any, corruption: str, severity: int, seed: int = 0, size: int | None = 224
) -> Any:
    """:class:`CorruptedImages` of ``dataset`` as a feature source (dataset :data:`DATASET`,
    split :func:`corruption_split`), for :func:`glocal.features.extract_features`."""
    from glocal.features.sources import DatasetSource

    images = CorruptedImages(dataset, corruption, severity, seed, size)
    return DatasetSource(images, name=DATASET, split=corruption_split(corruption, severity),
                         description=images.description)  # fmt: skip
