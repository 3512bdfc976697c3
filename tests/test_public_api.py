"""The package's public surface: a complete, sorted ``__all__`` and a cheap ``import modelsteward``."""

from __future__ import annotations

import subprocess
import sys

import modelsteward


def test_all_is_sorted_and_complete() -> None:
    assert modelsteward.__all__ == sorted(modelsteward.__all__)
    for name in modelsteward.__all__:
        assert getattr(modelsteward, name) is not None, name


def test_every_error_is_exported() -> None:
    from modelsteward import errors

    for name, value in vars(errors).items():
        if isinstance(value, type) and issubclass(value, errors.StewardError) and name not in ("RemoteError",):
            assert name in modelsteward.__all__, name


def test_import_is_cheap() -> None:
    heavy = ("fastapi", "sqlalchemy", "pandas", "sklearn", "shap", "dask", "uvicorn")
    code = f"import sys, modelsteward; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_every_builtin_kind_is_an_entry_point() -> None:
    from importlib.metadata import entry_points

    from modelsteward.kinds.registry import BUILTIN_KINDS

    declared = {ep.name: ep.value for ep in entry_points(group="modelsteward.kinds")}
    assert declared == BUILTIN_KINDS
