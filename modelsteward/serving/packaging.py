"""Model bundles: one version, its artifact, a copy of modelsteward and a server, to run anywhere without the catalog.

``write_bundle`` lays out a directory that a container build, a virtualenv or an edge device can run as is::

    model/artifact.<ext>   the artifact bytes exactly as registered
    model/model.json       the version as the catalog knew it (signature, requirements, sha256, ...)
    modelsteward/          a copy of this package's source, so no package index needs to have it
    requirements.txt       pinned: the version's captured packages plus what the bundled server needs
    serve.py               ``python serve.py [--host H] [--port P]``
    Dockerfile, README.md, .dockerignore

``bundle_runtime.open_bundle`` reads one back, refusing an artifact whose sha256 differs from model.json,
and ``bundle_runtime.BundleServer`` answers requests for it as the gateway answers a one-champion deployment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelsteward.domain.records import ModelVersion
from modelsteward.errors import (
    AlreadyExists,
    IntegrityError,
    InvalidArgument,
    MissingDependency,
)
from modelsteward.serving.bundle_files import SERVE_PY, artifact_extension, dockerfile, readme
from modelsteward.serving.bundle_runtime import BUNDLE_FORMAT, MANIFEST

if TYPE_CHECKING:
    pass

PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""The source of the running modelsteward, copied into every bundle (this module is modelsteward/serving/...)."""

# The file extension of each artifact format the built-in kinds write; other formats keep their own name.
# What of the package source goes into a bundle: code and package data, never caches or editor files.
_SOURCE_SUFFIXES = frozenset(
    {".py", ".pyi", ".typed", ".yaml", ".yml", ".json", ".toml", ".mako", ".sql", ".html", ".css", ".js", ".svg"}
)
# Catalog state that changes after packaging; a bundle is a snapshot of the immutable version only.
_NOT_BUNDLED = {"aliases"}


# -- writing ---------------------------------------------------------------------------------------------


def check_out_dir(out: Path) -> None:
    """Refuse a target that exists and is not an empty directory (before any download is wasted on it)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AlreadyExists(
            f"{out} exists and is not a directory; give a new or empty directory", details={"path": str(out)}
        )
    if out.is_dir() and any(out.iterdir()):
        raise AlreadyExists(
            f"{out} is not empty; give a new or empty directory for the bundle", details={"path": str(out)}
        )


def write_bundle(version: ModelVersion, artifact: bytes, out: Path) -> Path:
    """Write a self-contained bundle of ``version`` into ``out`` (new or empty) and return its path.

    ``artifact`` must be the version's registered bytes (their sha256 is checked). Pure file writing:
    no catalog access, so any face can fetch the version and bytes its own way.

    >>> version, data = st.artifact_bytes("credit-risk@production")   # doctest: +SKIP
    >>> write_bundle(version, data, Path("bundle"))                    # doctest: +SKIP
    """
    out = Path(out)
    actual = hashlib.sha256(artifact).hexdigest()
    if actual != version.artifact.sha256 or len(artifact) != version.artifact.size:
        raise IntegrityError(
            f"the artifact given for {version.ref} has sha256 {actual[:12]}... ({len(artifact)} bytes) but "
            f"{version.artifact.sha256[:12]}... ({version.artifact.size} bytes) was registered",
            details={"model_version": version.ref},
        )
    check_out_dir(out)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_contents(version, artifact, out)
    except BaseException:
        # Leave no half-written bundle behind, but never remove what was there before.
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise
    return out


def _write_contents(version: ModelVersion, artifact: bytes, out: Path) -> None:
    file_name = f"artifact.{artifact_extension(version.artifact.format)}"
    (out / "model").mkdir()
    (out / "model" / file_name).write_bytes(artifact)
    copy_package_source(out / "modelsteward")
    manifest = bundle_manifest(version, file_name, modelsteward_version=source_version(out / "modelsteward"))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    (out / "requirements.txt").write_text("\n".join(bundle_requirements(version)) + "\n", encoding="utf-8")
    (out / "serve.py").write_text(SERVE_PY, encoding="utf-8")
    (out / "Dockerfile").write_text(dockerfile(version), encoding="utf-8")
    (out / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\nlogs/\n", encoding="utf-8")
    (out / "README.md").write_text(readme(version), encoding="utf-8")


def bundle_manifest(version: ModelVersion, file_name: str, *, modelsteward_version: str) -> dict[str, Any]:
    """model.json: the version's immutable record, the artifact file's name and the packaging modelsteward."""
    record = version.model_dump(mode="json", exclude=_NOT_BUNDLED)
    artifact = record.pop("artifact")
    head = {
        "bundle_format": BUNDLE_FORMAT,
        "name": version.name,
        "version": version.version,
        "ref": version.ref,
        "kind": version.kind,
        "artifact": {"file": file_name, **artifact},
        "modelsteward_version": modelsteward_version,
    }
    return {**head, **{k: v for k, v in record.items() if k not in head}}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?")


def runtime_requirements() -> list[str]:
    """What the bundled modelsteward needs to serve: its non-extra dependencies, pinned to the installed versions."""
    try:
        declared = metadata.requires("modelsteward") or []
    except metadata.PackageNotFoundError as e:
        raise MissingDependency(
            "modelsteward is not installed as a distribution, so its dependencies are unknown; "
            "package from an installed modelsteward (pip install modelsteward)"
        ) from e
    pinned = []
    for spec in declared:
        requirement, _, marker = spec.partition(";")
        if "extra" in marker:
            continue
        match = _REQUIREMENT.match(requirement)
        if match is None:
            continue
        name, extras = match.group(1), match.group(2) or ""
        try:
            line = f"{name}{extras}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            line = requirement.strip()  # declared but absent here: keep the declared range
        pinned.append(f"{line}; {marker.strip()}" if marker.strip() else line)
    return pinned


def bundle_requirements(version: ModelVersion) -> list[str]:
    """requirements.txt's lines: the version's captured packages (they win: the model was built with them),
    then the server's runtime dependencies, one line per distribution, sorted. modelsteward itself is not
    listed: the bundle carries its source."""
    lines: dict[str, str] = {}
    for name, pinned in sorted(version.requirements.packages.items()):
        if _normalized(name) != "modelsteward":
            lines[_normalized(name)] = f"{name}=={pinned}"
    for line in runtime_requirements():
        match = _REQUIREMENT.match(line)
        assert match is not None
        lines.setdefault(_normalized(match.group(1)), line)
    return [lines[key] for key in sorted(lines)]


def source_version(package_dir: Path) -> str:
    """The ``__version__`` a copy of the modelsteward source declares: what the bundled server will report."""
    match = re.search(r"^__version__ = [\"']([^\"']+)[\"']", (package_dir / "__init__.py").read_text("utf-8"), re.M)
    if match is None:
        raise InvalidArgument(f"{package_dir / '__init__.py'} declares no __version__")
    return match.group(1)


def copy_package_source(target: Path) -> int:
    """Copy the running modelsteward package's code and package data into ``target``; returns the file count."""
    source = PACKAGE_DIR
    copied = 0
    for directory, subdirs, files in os.walk(source):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__" and not d.startswith("."))
        relative = Path(directory).relative_to(source)
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix not in _SOURCE_SUFFIXES:
                continue
            destination = target / relative / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(directory) / name, destination)
            copied += 1
    return copied
