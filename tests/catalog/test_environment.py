"""Environment and source capture."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from modelsteward.catalog.environment import capture, module_roots
from modelsteward.catalog.source import capture_source


def test_capture_records_python_and_the_packages_that_matter() -> None:
    import sklearn.linear_model

    req = capture(["scikit-learn", "not-a-real-package"], module_roots(sklearn.linear_model.LogisticRegression()))
    assert req.python == platform.python_version()
    assert req.packages["scikit-learn"] == sklearn.__version__
    assert "not-a-real-package" not in req.packages
    assert "modelsteward" in req.packages


def test_module_roots_follow_the_class_hierarchy() -> None:
    import xgboost

    roots = module_roots(xgboost.XGBClassifier())
    assert roots[0] == "xgboost" and "sklearn" in roots
    req = capture([], roots)
    assert req.packages["xgboost-cpu" if "xgboost-cpu" in req.packages else "xgboost"] == xgboost.__version__


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_source_is_read_from_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    _git(repo, "remote", "add", "origin", "https://user:secret@git.example.com/risk/models.git")
    (repo / "train.py").write_text("print(1)\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    commit = _git(repo, "rev-parse", "HEAD")
    source = capture_source(repo / "src")
    assert source is not None
    assert source.commit == commit and source.branch == "main" and source.dirty is False
    assert source.repository == "https://git.example.com/risk/models.git"  # credentials stripped
    assert source.path == "src"
    (repo / "train.py").write_text("print(2)\n")
    assert capture_source(repo).dirty is True
    _git(repo, "pack-refs", "--all")
    assert capture_source(repo).commit == commit


def test_no_git_no_source(tmp_path: Path) -> None:
    assert capture_source(tmp_path) is None
