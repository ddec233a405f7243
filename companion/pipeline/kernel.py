"""A Jupyter kernelspec that runs notebooks with this interpreter (``sys.executable``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from glocal.errors import GlocalError
from glocal.io import atomic_path, file_lock

KERNEL_NAME = "glocal"


#: The kernel's own log shows errors only: its one warning on a normal run says that a
#: kernel on this machine's loopback talks over TCP without encryption (nothing a notebook's
#: reader can act on; warnings raised by the notebook's code still show in its outputs).
KERNEL_OPTIONS = ["--IPKernelApp.log_level=ERROR"]


def _argv() -> list[str]:
    return [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", *KERNEL_OPTIONS]


def _spec_matches(argv: list[str], options: bool = True) -> bool:
    """Whether ``argv`` runs ``sys.executable`` (and, with ``options``, exactly as we write it)."""
    if not argv or (options and argv[1:] != _argv()[1:]):
        return False
    try:
        return os.path.samefile(argv[0], sys.executable)
    except OSError:
        return False


def _kernels_dir() -> Path:
    """Where the spec is installed: this environment's ``share/jupyter/kernels``."""
    return Path(sys.prefix) / "share" / "jupyter" / "kernels"


def _installed_spec_matches() -> bool:
    """True when Jupyter finds a ``glocal`` kernelspec that runs ``sys.executable``."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return _spec_matches(KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv)
    except NoSuchKernel:
        return False


def _write_spec(kernels_dir: Path) -> None:
    spec = {
        "argv": _argv(),
        "display_name": f"Python (glocal, {sys.prefix})",
        "language": "python",
        "metadata": {"debugger": True},
    }
    with atomic_path(kernels_dir / KERNEL_NAME / "kernel.json") as tmp:
        tmp.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")


def kernel_name() -> str:
    """The name of a kernelspec running ``sys.executable``; installed into sys.prefix if needed.

    The usual ``python3`` spec runs whatever ``python`` is first on PATH, which need not be this
    environment's; the ``glocal`` spec names the interpreter explicitly. Of two processes that
    find it missing, one writes it while the other waits, then finds it.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if _installed_spec_matches():
        return KERNEL_NAME
    target = _kernels_dir()
    try:
        with file_lock(target / KERNEL_NAME / "kernel.json"):
            if not _installed_spec_matches():
                _write_spec(target)
    except OSError as err:
        raise GlocalError(
            f"cannot write the Jupyter kernelspec {target / KERNEL_NAME} ({err}); run "
            f"`{sys.executable} -m ipykernel install --user --name {KERNEL_NAME}`"
        ) from err
    found = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    if not _spec_matches(found.argv, options=False):
        raise GlocalError(  # e.g. a user-level spec of that name shadows this environment's
            f"the Jupyter kernelspec {KERNEL_NAME!r} at {found.resource_dir} runs {found.argv[0]}, "
            f"not {sys.executable}; remove that folder or run `{sys.executable} -m ipykernel "
            f"install --user --name {KERNEL_NAME}`"
        )
    return KERNEL_NAME


if __name__ == "__main__":  # python -m companion.pipeline.kernel: write the spec, print its name
    print(kernel_name())
