"""Capture where code came from: repository, commit and branch, read straight from ``.git``."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

from modelsteward.domain.records import Source
from modelsteward.settings import strip_credentials


def _git_dir(start: Path) -> tuple[Path, Path] | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return folder, candidate
        if candidate.is_file():  # a worktree or submodule: ".git" names the real directory
            text = candidate.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                target = Path(text.split(":", 1)[1].strip())
                return folder, (folder / target).resolve() if not target.is_absolute() else target
    return None


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    for base in (git_dir, _common_dir(git_dir)):
        loose = base / ref
        if loose.is_file():
            return loose.read_text().strip() or None
        packed = base / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(errors="replace").splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    return None


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    if common.is_file():
        return (git_dir / common.read_text().strip()).resolve()
    return git_dir


def _remote_url(git_dir: Path) -> str | None:
    config = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        config.read(_common_dir(git_dir) / "config")
    except configparser.Error:
        return None
    for section in ('remote "origin"', *[s for s in config.sections() if s.startswith("remote ")]):
        if config.has_option(section, "url"):
            return strip_credentials(config.get(section, "url"))  # a source record never carries a secret
    return None


def _is_dirty(worktree: Path) -> bool | None:
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=worktree,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(result.stdout.strip()) if result.returncode == 0 else None


def capture_source(start: Path | None = None, *, check_dirty: bool = True) -> Source | None:
    """The git repository, commit and branch around ``start`` (default: the working directory)."""
    start = (start or Path.cwd()).resolve()
    found = _git_dir(start)
    if found is None:
        return None
    worktree, git_dir = found
    head_file = git_dir / "HEAD"
    if not head_file.is_file():
        return None
    head = head_file.read_text().strip()
    branch = None
    if head.startswith("ref:"):
        ref = head.split(":", 1)[1].strip()
        branch = ref.removeprefix("refs/heads/")
        commit = _resolve_ref(git_dir, ref)
    else:
        commit = head or None
    if commit is None:  # a repository without commits yet
        return Source(repository=_remote_url(git_dir) or str(worktree), branch=branch, path=str(start))
    return Source(
        repository=_remote_url(git_dir) or str(worktree),
        commit=commit,
        branch=branch,
        dirty=_is_dirty(worktree) if check_dirty else None,
        path=str(start.relative_to(worktree)) if start != worktree else ".",
    )
