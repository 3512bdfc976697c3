"""Every file the package needs at run time ships in the wheel: each non-Python file under modelsteward/ matches
a pattern of pyproject.toml's package-data (the dashboard's templates once did not)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_data_file_of_the_package_is_in_its_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "modelsteward"
    ]
    package = ROOT / "modelsteward"
    data = [p.relative_to(package).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]  # fmt: skip
    assert {"web/templates/base.html", "web/static/steward.js", "demo/definitions/credit_lifecycle.yaml"} <= set(data)
    missing = [f for f in data if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
