"""Capture the environment a version was registered from: Python, platform and package versions."""

from __future__ import annotations

import functools
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from modelsteward.domain.records import Requirements

# Import names whose distribution is named differently; anything else is tried as is first.
_DISTRIBUTION_OF = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "skl2onnx": "skl2onnx",
    "cv2": "opencv-python",
}
_SKIP_MODULES = {"builtins", "__main__", "abc", "typing", "collections", "functools"}


@functools.cache
def _version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def _distributions_of_module(root: str) -> tuple[str, ...]:
    if root in _SKIP_MODULES or root in sys.stdlib_module_names:
        return ()
    direct = _DISTRIBUTION_OF.get(root, root)
    if _version_of(direct) is not None:
        return (direct,)
    # Slow path (tens of ms, once per process): ask the installed distributions who ships this module.
    return tuple(_packages_distributions().get(root, ()))


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def module_roots(obj: Any) -> list[str]:
    """Top-level modules of ``obj``'s class and its bases, e.g. ``['xgboost', 'sklearn']``."""
    roots: list[str] = []
    for cls in type(obj).__mro__:
        root = (cls.__module__ or "").split(".")[0]
        if root and root not in roots:
            roots.append(root)
    return roots


def capture(distributions: Iterable[str], modules: Iterable[str] = ()) -> Requirements:
    """Versions of the named distributions and of those that ship ``modules``; absent ones are skipped."""
    packages: dict[str, str] = {}
    for dist in list(distributions) + [d for m in modules for d in _distributions_of_module(m)]:
        version = _version_of(dist)
        if version is not None:
            packages[dist] = version
    modelsteward_version = _version_of("modelsteward")
    if modelsteward_version:
        packages["modelsteward"] = modelsteward_version
    return Requirements(
        python=platform.python_version(),
        platform=f"{sys.platform}-{platform.machine()}",
        packages=dict(sorted(packages.items())),
    )
