"""A Jupyter kernelspec that runs notebooks with this interpreter (``sys.executable``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from glocal.errors import GlocalError

KERNEL_NAME = "glocal"


def _spec_matches(argv: list[str]) -> bool:
    if not argv:
        return False
    try:
        return os.path.samefile(argv[0], sys.executable)
    except OSError:
        return False


def _write_spec(kernels_dir: Path) -> None:
    folder = kernels_dir / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python (glocal, {sys.prefix})",
        "language": "python",
        "metadata": {"debugger": True},
    }
    tmp = folder / "kernel.json.tmp"
    tmp.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder / "kernel.json")


def kernel_name() -> str:
    """The name of a kernelspec running ``sys.executable``; installed into sys.prefix if needed.

    The usual ``python3`` spec runs whatever ``python`` is first on PATH, which need not be this
    environment's; the ``glocal`` spec names the interpreter explicitly.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        if _spec_matches(manager.get_kernel_spec(KERNEL_NAME).argv):
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    target = Path(sys.prefix) / "share" / "jupyter" / "kernels"
    try:
        _write_spec(target)
    except OSError as err:
        raise GlocalError(
            f"cannot write the Jupyter kernelspec {target / KERNEL_NAME} ({err}); run "
            f"`{sys.executable} -m ipykernel install --user --name {KERNEL_NAME}`"
        ) from err
    found = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    if not _spec_matches(found.argv):
        raise GlocalError(
            f"the Jupyter kernelspec {KERNEL_NAME!r} at {found.resource_dir} runs {found.argv[0]}, "
            f"not {sys.executable}; remove that folder or run `{sys.executable} -m ipykernel "
            f"install --user --name {KERNEL_NAME}`"
        )
    return KERNEL_NAME
