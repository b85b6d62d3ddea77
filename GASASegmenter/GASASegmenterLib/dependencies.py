"""The engine's Python packages inside Slicer: checked, and installed on first use after asking.

torch comes from the PyTorch extension's installer (``PyTorchUtils``), which picks the build that fits the
GPU and driver; the rest comes from pip with ``--no-deps`` where a package would drag in others
(dynamic-network-architectures declares timm -> torchvision). Packages Slicer ships (numpy, SimpleITK)
are never reinstalled, so nothing Slicer relies on is downgraded. Once installed, everything works offline.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PACKAGES", "Package", "installMissing", "missingPackages"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Package:
    """One requirement: the module to import, the pip requirement, and whether to install without deps."""

    module: str
    requirement: str
    noDeps: bool = False


#: What GASACore needs besides torch, numpy and SimpleITK (which Slicer or PyTorchUtils provide).
PACKAGES: tuple[Package, ...] = (
    Package("safetensors", "safetensors>=0.4"),
    Package("tqdm", "tqdm>=4.60"),
    Package("einops", "einops"),
    Package("dynamic_network_architectures", "dynamic-network-architectures>=0.4.4,<0.5", noDeps=True),
)


def _present(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missingPackages() -> list[str]:
    """Module names that cannot be imported now (``torch`` included)."""
    missing = [] if _present("torch") else ["torch"]
    missing += [p.module for p in PACKAGES if not _present(p.module)]
    missing += [m for m in ("numpy", "SimpleITK") if not _present(m)]
    return missing


def installMissing(confirm: Callable[[str], bool], log: Callable[[str], None] = logger.info) -> bool:
    """Install what is missing, inside Slicer, after ``confirm(question)`` returns ``True``.

    Returns:
        ``True`` when everything is importable afterwards.

    Raises:
        RuntimeError: installation is impossible (no network, pip failure, no PyTorch extension); the
            message says what to do.
    """
    missing = missingPackages()
    if not missing:
        return True
    question = (
        "GASASegmenter needs these Python packages, which are not installed yet: "
        + ", ".join(missing)
        + ".\nInstall them now? This downloads about 1-3 GB for torch and needs a network connection once."
    )
    if not confirm(question):
        return False
    import slicer  # the application: pip_install and the PyTorch extension live there

    if "torch" in missing:
        try:
            import PyTorchUtils  # from the PyTorch extension (declared in EXTENSION_DEPENDS)
        except ImportError as err:
            raise RuntimeError(
                "torch is missing and the PyTorch extension is not installed: install 'PyTorch' from the "
                "Extensions Manager, restart Slicer, and segment again"
            ) from err
        log("installing torch with the PyTorch extension (this takes a few minutes)...")
        torchLogic = PyTorchUtils.PyTorchUtilsLogic()
        if torchLogic.installTorch(askConfirmation=False) is None:
            raise RuntimeError("the PyTorch extension could not install torch; see the Python console for details")
    for package in PACKAGES:
        if package.module in missing:
            log(f"installing {package.requirement}...")
            arguments = [package.requirement, "--no-deps"] if package.noDeps else [package.requirement]
            try:
                slicer.util.pip_install(arguments)
            except Exception as err:
                raise RuntimeError(
                    f"pip could not install {package.requirement} ({err}); check the network connection or "
                    "proxy, or install it offline with slicer.util.pip_install('/path/to/wheel.whl')"
                ) from err
    importlib.invalidate_caches()
    still = missingPackages()
    if still:
        raise RuntimeError(f"still missing after installation: {', '.join(still)}; restart Slicer and try again")
    return True
