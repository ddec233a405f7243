"""Feature extraction throughput: images per second for a random-weight ViT-B/16 (CPU, and GPU)."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from glocal.features import ImagePaths, extract_features, image_folder, load_model  # noqa: E402
from glocal.io import atomic_write  # noqa: E402

MODEL = "dino-vit-base-p16"  # timm vit_base_patch16_224: ViT-B/16 at 224 px, 768-d CLS token


def make_images(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` random 320×256 JPEGs in 8 class folders (decode + resize cost like real photos)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / f"class_{i % 8}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (256, 320, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:05d}.jpg", quality=90)
    return root


def forward_only(model, batch_size: int, repeats: int, amp: bool) -> float:
    """Images/s of the network alone on a fixed batch (no decoding, no storage)."""
    batch = torch.randn(batch_size, 3, 224, 224)
    model.encode(batch, amp=amp)  # warm-up
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    start = time.perf_counter()
    for _ in range(repeats):
        model.encode(batch, amp=amp)
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    return batch_size * repeats / (time.perf_counter() - start)


def run(device: str, n_images: int, batch_size: int, repeats: int, workers: int | None) -> dict:
    """End-to-end (folder → HDF5 store) and forward-only images/s on ``device``."""
    model = load_model(MODEL, pretrained=False, device=device, seed=0)
    amp = model.device.type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        source = image_folder(make_images(Path(tmp) / "images", n_images), name="bench")
        # warm-up batch (allocations, kernel selection), then the timed run
        warm = ImagePaths(source.paths[:batch_size], name="warm")
        extract_features(
            model,
            warm,
            cache_dir=Path(tmp) / "warm",
            batch_size=batch_size,
            num_workers=0,
            verbose=0,
        )
        start = time.perf_counter()
        store = extract_features(
            model,
            source,
            cache_dir=Path(tmp) / "cache",
            batch_size=batch_size,
            num_workers=workers,
            verbose=0,
        )
        end_to_end = n_images / (time.perf_counter() - start)
        assert store.features().shape == (n_images, 768)
    if amp:
        name = torch.cuda.get_device_name(model.device)
    else:
        name = f"{platform.machine()}, {os.cpu_count()} cores"
    return {
        "device": f"{model.device.type} ({name})",
        "threads": torch.get_num_threads(),
        "amp": "fp16 autocast" if amp else "fp32",
        "n_images": n_images,
        "batch_size": batch_size,
        "end_to_end": end_to_end,
        "forward": forward_only(model, batch_size, repeats, amp),
    }


def _row(r: dict) -> str:
    return (
        f"| {r['device']} | {r['amp']} | {r['threads']} | {r['n_images']} | "
        f"{r['batch_size']} | {r['end_to_end']:.1f} | {r['forward']:.1f} |"
    )


def write_section(rows: list[dict], out: Path) -> None:
    """Write the markdown section atomically; rows of devices not measured now are kept."""
    measured = {r["device"].split(" ")[0] for r in rows}
    kept = []
    if out.is_file():
        for line in out.read_text().splitlines():
            cells = line.split("|")
            if len(cells) > 2 and cells[1].strip().split(" ")[0] in ("cpu", "cuda"):
                if cells[1].strip().split(" ")[0] not in measured:
                    kept.append(line)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Feature extraction (`benchmarks/bench_extract.py`)\n",
        f"Random-weight ViT-B/16 (`{MODEL}`, timm `vit_base_patch16_224`, 768-d CLS token of the "
        "final norm; speed does not depend on the weights). *End to end*: JPEG folder "
        "(320×256) → decode, resize, crop → network → HDF5 feature store. *Forward*: the "
        f"network alone on a fixed 224 px batch. Last run {stamp}, 1-minute load average "
        f"{os.getloadavg()[0]:.1f} at its end (other jobs shared the CPU when it exceeds the "
        "core count).\n",
        "| device | precision | torch threads | images | batch | end to end (img/s) "
        "| forward (img/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += sorted(kept + [_row(r) for r in rows])
    atomic_write(out, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu-images", type=int, default=48)
    parser.add_argument("--gpu-images", type=int, default=2048)
    parser.add_argument("--cpu-batch", type=int, default=16)
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=None, help="data loader workers (auto)")
    parser.add_argument("--no-cpu", action="store_true", help="GPU only")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "extract.md")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rows = []
    if not args.no_cpu:
        rows.append(run("cpu", args.cpu_images, args.cpu_batch, 2, args.workers))
        print(rows[-1], flush=True)
    if torch.cuda.is_available():
        rows.append(run("cuda", args.gpu_images, args.gpu_batch, 10, args.workers))
        print(rows[-1], flush=True)
    write_section(rows, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
