"""Where the serving datasets live (a local directory or an fsspec URL): atomic writes and manifest-aware listings.

Layout of a dataset (the prediction log, the feedback log)::

    <root>/deployment=<name>/date=YYYY-MM-DD/part-<worker>-<run>-<seq>.parquet   complete parts, immutable
    <root>/deployment=<name>/date=YYYY-MM-DD/.tmp-<part>.tmp                     being written (or left by a crash)
    <root>/deployment=<name>/date=YYYY-MM-DD/_compaction-<id>.json               a merge in progress (see log_compactor)

A part is written under its temporary name and renamed into place (``os.replace`` locally, ``fs.mv`` on fsspec), so
a ``*.parquet`` glob never matches a half-written file; temporary names start with ``.`` and end with ``.tmp`` so that
neither DuckDB's glob nor pyarrow's dataset discovery (which skips ``.`` and ``_`` prefixes) picks them up.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import posixpath
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from modelsteward.domain.refs import check_name

PART_SUFFIX = ".parquet"
TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".tmp"
MANIFEST_PREFIX = "_compaction-"
MANIFEST_SUFFIX = ".json"
DEPLOYMENT_KEY = "deployment="
DATE_KEY = "date="


@dataclass(frozen=True)
class StoredFile:
    """One file of a dataset, with the partition it sits in."""

    deployment: str
    date: str
    name: str
    path: str

    @property
    def is_part(self) -> bool:
        return self.name.endswith(PART_SUFFIX) and not self.name.startswith((".", "_"))

    @property
    def is_manifest(self) -> bool:
        return self.name.startswith(MANIFEST_PREFIX) and self.name.endswith(MANIFEST_SUFFIX)

    @property
    def is_temporary(self) -> bool:
        return self.name.startswith(TMP_PREFIX) and self.name.endswith(TMP_SUFFIX)


def temporary_name(name: str) -> str:
    return f"{TMP_PREFIX}{name}{TMP_SUFFIX}"


def parquet_options(table: Any, compression: str) -> dict[str, Any]:
    """Dictionary-encode only the text columns: request-level fields (model, arm, ref...) repeat and
    shrink well, while measured numbers rarely repeat and would triple the cost of every write."""
    import pyarrow as pa

    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return {"compression": compression, "use_dictionary": text}


class Storage(abc.ABC):
    """The few file operations the logs and the compactor need, on a local directory or an fsspec filesystem."""

    url: str
    #: The dataset's directory as this storage's methods take it (a local path, or a path inside the filesystem).
    base: str
    #: The fsspec filesystem DuckDB must know about to read this dataset (None for a local directory).
    filesystem: Any = None

    def partition(self, deployment: str, date: str) -> str:
        return self.join(self.join(self.base, f"{DEPLOYMENT_KEY}{deployment}"), f"{DATE_KEY}{date}")

    @abc.abstractmethod
    def join(self, directory: str, name: str) -> str: ...

    @abc.abstractmethod
    def write_parquet(self, directory: str, name: str, table: Any, compression: str) -> None:
        """Write ``table`` as ``directory/name`` under a temporary name, then rename it into place."""

    @abc.abstractmethod
    def write_bytes(self, directory: str, name: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def read_bytes(self, path: str) -> bytes: ...

    @abc.abstractmethod
    def open(self, path: str) -> IO[bytes]: ...

    @abc.abstractmethod
    def delete(self, path: str) -> bool:
        """Remove ``path``; False when it was already gone."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def modified(self, path: str) -> float | None:
        """When ``path`` was last written (epoch seconds), None when the filesystem does not say."""

    @abc.abstractmethod
    def files(self, deployment: str | None = None) -> list[StoredFile]:
        """Every file in ``deployment=*/date=*/`` (or in one deployment's partitions), parts or not."""

    def reader_path(self, path: str) -> str:
        """The path as DuckDB reads it (a local path, or a URL of the registered filesystem)."""
        return path


class LocalStorage(Storage):
    def __init__(self, root: str) -> None:
        if root.startswith("file://"):
            root = root[len("file://") :]
        self.base = os.path.abspath(os.path.expanduser(root))
        self.url = self.base

    def join(self, directory: str, name: str) -> str:
        return os.path.join(directory, name)

    def _write(self, directory: str, name: str, write: Any) -> None:
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, temporary_name(name))
        try:
            write(tmp)
            os.replace(tmp, os.path.join(directory, name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def write_parquet(self, directory: str, name: str, table: Any, compression: str) -> None:
        import pyarrow.parquet as pq

        self._write(directory, name, lambda tmp: pq.write_table(table, tmp, **parquet_options(table, compression)))

    def write_bytes(self, directory: str, name: str, data: bytes) -> None:
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)

        self._write(directory, name, write)

    def read_bytes(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def open(self, path: str) -> IO[bytes]:
        return open(path, "rb")

    def delete(self, path: str) -> bool:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def modified(self, path: str) -> float | None:
        try:
            return os.stat(path).st_mtime
        except FileNotFoundError:
            return None

    def files(self, deployment: str | None = None) -> list[StoredFile]:
        out: list[StoredFile] = []
        for dep_name, dep_dir in _subdirs(self.base, DEPLOYMENT_KEY, deployment):
            for date, date_dir in _subdirs(dep_dir, DATE_KEY, None):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(date_dir) as it:
                    out.extend(StoredFile(dep_name, date, e.name, e.path) for e in it if not e.is_dir())
        return out


def _subdirs(directory: str, key: str, only: str | None) -> list[tuple[str, str]]:
    if only is not None:
        path = os.path.join(directory, key + only)
        return [(only, path)] if os.path.isdir(path) else []
    try:
        with os.scandir(directory) as it:
            return [(e.name[len(key) :], e.path) for e in it if e.name.startswith(key) and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


class FsspecStorage(Storage):
    def __init__(self, root: str) -> None:
        from fsspec.core import url_to_fs

        self.filesystem, base = url_to_fs(root)
        self.base = base.rstrip("/") or "/"
        self.url = root

    def join(self, directory: str, name: str) -> str:
        return posixpath.join(directory, name)

    def _write(self, directory: str, name: str, write: Any) -> None:
        fs = self.filesystem
        with contextlib.suppress(FileExistsError):
            fs.makedirs(directory, exist_ok=True)
        tmp = posixpath.join(directory, temporary_name(name))
        try:
            with fs.open(tmp, "wb") as f:
                write(f)
            fs.mv(tmp, posixpath.join(directory, name))
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm(tmp)
            raise

    def write_parquet(self, directory: str, name: str, table: Any, compression: str) -> None:
        import pyarrow.parquet as pq

        self._write(directory, name, lambda f: pq.write_table(table, f, **parquet_options(table, compression)))

    def write_bytes(self, directory: str, name: str, data: bytes) -> None:
        self._write(directory, name, lambda f: f.write(data))

    def read_bytes(self, path: str) -> bytes:
        return bytes(self.filesystem.cat_file(path))

    def open(self, path: str) -> IO[bytes]:
        return self.filesystem.open(path, "rb")  # type: ignore[no-any-return]

    def delete(self, path: str) -> bool:
        try:
            self.filesystem.rm(path)
        except FileNotFoundError:
            return False
        return True

    def exists(self, path: str) -> bool:
        return bool(self.filesystem.exists(path))

    def modified(self, path: str) -> float | None:
        try:
            info = self.filesystem.info(path)
        except FileNotFoundError:
            return None
        for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
            value = info.get(key)
            if isinstance(value, int | float):
                return float(value)
            if isinstance(value, datetime):
                return value.timestamp()
        return None

    def files(self, deployment: str | None = None) -> list[StoredFile]:
        start = self.base if deployment is None else posixpath.join(self.base, DEPLOYMENT_KEY + deployment)
        try:
            found = self.filesystem.find(start, withdirs=False)
        except FileNotFoundError:
            return []
        prefix = self.base.rstrip("/") + "/"
        out: list[StoredFile] = []
        for path in found:
            parts = path[len(prefix) :].split("/") if path.startswith(prefix) else []
            if len(parts) == 3 and parts[0].startswith(DEPLOYMENT_KEY) and parts[1].startswith(DATE_KEY):
                out.append(StoredFile(parts[0][len(DEPLOYMENT_KEY) :], parts[1][len(DATE_KEY) :], parts[2], path))
        return out

    def reader_path(self, path: str) -> str:
        return str(self.filesystem.unstrip_protocol(path))


def open_storage(root: str | os.PathLike[str]) -> Storage:
    """A local directory (a path or ``file://``) or any fsspec URL (``memory://``, ``s3://``...)."""
    root = os.fspath(root)
    if "://" not in root or root.startswith("file://"):
        return LocalStorage(root)
    return FsspecStorage(root)


def read_manifest(storage: Storage, path: str) -> dict[str, Any] | None:
    """A compaction manifest, or None when it is gone or unreadable (a merge that finished meanwhile)."""
    try:
        data = json.loads(storage.read_bytes(path))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("merged"), str):
        return None
    if not isinstance(data.get("sources"), list):
        return None
    return data


def live_parts(storage: Storage, deployment: str | None = None) -> list[StoredFile]:
    """The parts a reader must read, sorted: every complete part, minus the sources a visible merged part replaces.

    While a compaction is in progress its manifest names the merged part and its sources. Once the merged part is
    visible the sources are left out (they are deleted later, after a grace period, so a reader that listed them a
    moment before can still open them); before that, the sources are read and the merged part does not exist yet.
    """
    if deployment is not None:
        check_name(deployment, field="deployment")
    files = storage.files(deployment)
    parts = [f for f in files if f.is_part]
    manifests = [f for f in files if f.is_manifest]
    if manifests:
        present = {(f.deployment, f.date, f.name) for f in parts}
        hidden: set[tuple[str, str, str]] = set()
        for m in manifests:
            data = read_manifest(storage, m.path)
            if data is not None and (m.deployment, m.date, data["merged"]) in present:
                hidden.update((m.deployment, m.date, str(s)) for s in data["sources"])
        parts = [f for f in parts if (f.deployment, f.date, f.name) not in hidden]
    parts.sort(key=lambda f: (f.deployment, f.date, f.name))
    return parts
