"""Content-addressed artifact storage: bytes by sha256 in a local directory or at any fsspec URL."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from modelsteward.errors import IntegrityError, InvalidArgument, StoreUnavailable

_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    """Stores each artifact once, under ``sha256/ab/abcdef...``; every read checks the hash.

    A local path is written with write-then-rename, so a crash leaves no half-written artifact.
    Any other URL (``s3://bucket/prefix``, ``memory://x``...) goes through fsspec.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._fs: Any = None
        if "://" in url and not url.startswith("file://"):
            import fsspec

            try:
                self._fs, self._root = fsspec.core.url_to_fs(url)
            except (ImportError, ValueError) as e:
                raise StoreUnavailable(
                    f"cannot open the artifact store {url}: {e}", details={"artifact_url": url}
                ) from e
            self._root = self._root.rstrip("/")
        else:
            self._local_root = Path(url.removeprefix("file://")).expanduser()

    def _relative(self, sha256: str) -> str:
        if not _SHA256.fullmatch(sha256):
            raise InvalidArgument(f"not a sha256 digest: {sha256!r}", details={"field": "sha256"})
        return f"sha256/{sha256[:2]}/{sha256}"

    def location(self, sha256: str) -> str:
        rel = self._relative(sha256)
        if self._fs is None:
            return str(self._local_root / rel)
        return f"{self._root}/{rel}"

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256; storing the same bytes twice is free."""
        digest = sha256_hex(data)
        try:
            if self._fs is None:
                self._put_local(digest, data)
            else:
                path = self.location(digest)
                if not self._fs.exists(path):
                    self._fs.pipe_file(path, data)
        except OSError as e:
            raise StoreUnavailable(
                f"cannot write to the artifact store {self.url}: {e.strerror or e}",
                details={"artifact_url": self.url},
            ) from e
        return digest

    def _put_local(self, digest: str, data: bytes) -> None:
        target = self._local_root / self._relative(digest)
        if target.exists() and target.stat().st_size == len(data):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def get(self, sha256: str, *, owner: str) -> bytes:
        """Read an artifact and check it still hashes to ``sha256``; ``owner`` names it in errors."""
        path = self.location(sha256)
        try:
            if self._fs is None:
                data = Path(path).read_bytes()
            else:
                data = self._fs.cat_file(path)
        except FileNotFoundError as e:
            raise IntegrityError(
                f"the artifact of {owner} is missing from the artifact store (sha256 {sha256[:12]}...)",
                details={"model_version": owner, "sha256": sha256, "location": path},
            ) from e
        except OSError as e:
            raise StoreUnavailable(
                f"cannot read the artifact of {owner} from {self.url}: {e.strerror or e}",
                details={"model_version": owner, "artifact_url": self.url},
            ) from e
        actual = sha256_hex(data)
        if actual != sha256:
            raise IntegrityError(
                f"the artifact of {owner} was changed after registration: its sha256 is {actual[:12]}... "
                f"but {sha256[:12]}... was registered; refusing to load it",
                details={"model_version": owner, "expected_sha256": sha256, "actual_sha256": actual},
            )
        return data
