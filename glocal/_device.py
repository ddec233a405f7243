"""Torch device selection shared by fitting, evaluation and feature extraction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from glocal.errors import GlocalError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise GlocalError(f"device {device!r} is not a torch device (try auto, cpu, cuda)") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise GlocalError(
            f"device {device!r}: CUDA is not available here; use device 'auto' or 'cpu' "
            "(--device on the command line)"
        )
    if resolved.type == "cuda" and resolved.index is not None:
        count = torch.cuda.device_count()
        if resolved.index >= count:
            raise GlocalError(
                f"device {device!r}: this machine has {count} CUDA device(s), numbered from 0; "
                "use device='cuda' or an index below that"
            )
    return resolved


@contextmanager
def single_thread_if(small: bool) -> Iterator[None]:
    """Run tiny CPU problems on one torch thread: thread start-up costs more than it saves."""
    previous = torch.get_num_threads()
    if small and previous > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
