"""``glocal extract``: features of a registered model for a folder, THINGS, a dataset or texts."""

from __future__ import annotations

import argparse
from pathlib import Path

from glocal.commands._common import non_negative_int
from glocal.errors import GlocalError
from glocal.io import check_writable

#: File names ``--out`` takes as the store itself (anything else without a suffix: its folder).
STORE_SUFFIXES = (".h5", ".hdf5")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``extract`` sub-command."""
    parser = subparsers.add_parser(
        "extract",
        help="extract features of a model into the feature store",
        description=(
            "Run a registered model over images or texts and write an HDF5 feature store "
            "(features, labels, ids, provenance). Interrupted runs resume; finished stores "
            "are reused unless --overwrite."
        ),
    )
    parser.add_argument("--model", help="registered model name, e.g. clip_ViT-L/14")
    parser.add_argument("--module", default=None, help="module of the model (default: its first)")
    parser.add_argument(
        "--source",
        help="things[:IMAGES_ROOT], text:things-words, text:things-definitions, text:FILE, "
        "torchvision:NAME[:SPLIT], an image folder, or a .txt list of image paths",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output .h5 file, or a folder used as the store root (default: the glocal cache)",
    )
    parser.add_argument(
        "--npy", default=None, help="also write the features as this .npy file (name ends in .npy)"
    )
    parser.add_argument("--split", default=None, help="dataset split (torchvision) or split name")
    parser.add_argument("--dataset", default=None, help="dataset name used in the store path")
    parser.add_argument("--download", action="store_true", help="let torchvision download datasets")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--workers", type=non_negative_int, default=None, help="data loader workers (default: auto)"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ..."
    )
    parser.add_argument("--no-amp", action="store_true", help="no fp16 autocast on CUDA")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    parser.add_argument("--chunk-size", type=int, default=1024, help="rows per resumable chunk")
    parser.add_argument(
        "--random-weights", action="store_true", help="random weights (no download)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument(
        "--model-config",
        action="append",
        default=[],
        metavar="JSON",
        help="extra model configs (models.json layout); may repeat",
    )
    parser.add_argument("--overwrite", action="store_true", help="rewrite a finished store")
    parser.add_argument(
        "--list-models",
        action="store_true",
        help="list the registered models (the names --model and --module accept) and exit",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _out_paths(value: str | None) -> tuple[Path | None, Path | None]:
    """``--out`` as (store file, None) for a .h5/.hdf5 name or (None, store root) for a folder."""
    if value is None:
        return None, None
    target = Path(value)
    if target.suffix.lower() in STORE_SUFFIXES:
        if target.is_dir():
            raise GlocalError(f"--out {target} is a folder; give a .h5 file name or a folder name")
        check_writable(target, "--out")
        return target, None
    if target.suffix and not target.is_dir():
        hint = f"; for a NumPy copy use --npy {target}" if target.suffix.lower() == ".npy" else ""
        raise GlocalError(
            f"--out {target}: expected a feature store file ending in .h5 (or .hdf5) or a "
            f"folder to hold the store, not a {target.suffix} file{hint}"
        )
    check_writable(target / "store.h5", "--out folder")
    return None, target


def list_models_text(configs: list) -> str:
    """The registered models as a table whose first two columns are what ``--model`` and
    ``--module`` accept (a name's first module is its default)."""
    head = ("--model", "--module", "library", "weights", "dim", "input")
    rows = [(c.name, c.module, c.library, str(c.pretrained), str(c.dim), c.input) for c in configs]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [head, *rows]
    )


def run(args: argparse.Namespace) -> int:
    """Run the extraction described by ``args``; print the store path and its shape."""
    from glocal.features import (
        extract_features,
        list_models,
        read_model_configs,
        register_model,
        resolve_source,
    )
    from glocal.io import save_npy

    for path in args.model_config:
        for config in read_model_configs(path):
            register_model(config, replace=True)
    if args.list_models:
        print(list_models_text(list_models()))
        return 0
    if not args.model or not args.source:
        raise GlocalError("--model and --source are required (or --list-models)")
    out, cache_dir = _out_paths(args.out)
    if args.npy:
        npy = Path(args.npy)
        if npy.suffix.lower() != ".npy":
            raise GlocalError(
                f"--npy {npy}: the copy is written in NumPy's format, so the file name must end "
                f"in .npy (e.g. --npy {npy.with_suffix('.npy')})"
            )
        check_writable(npy, "--npy")
    source = resolve_source(args.source, split=args.split, download=args.download)
    store = extract_features(
        args.model,
        source,
        module=args.module,
        out=out,
        cache_dir=cache_dir,
        pretrained=not args.random_weights,
        seed=args.seed,
        split=args.split,
        dataset=args.dataset,
        batch_size=args.batch_size,
        num_workers=args.workers,
        device=args.device,
        amp=False if args.no_amp else None,
        dtype=args.dtype,
        chunk_size=args.chunk_size,
        overwrite=args.overwrite,
        verbose=int(not args.quiet),
    )
    if args.npy:
        save_npy(args.npy, store.features())
    print(
        f"{store.path}\t{store.n}x{store.dim}\t{store.metadata['model']}/{store.metadata['module']}"
    )
    return 0
