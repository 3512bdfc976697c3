"""The artifact store: content addressing, hash checks on every read, local and fsspec URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelsteward.errors import IntegrityError
from modelsteward.store.artifacts import ArtifactStore


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    digest = store.put(b"model bytes")
    assert digest == hashlib.sha256(b"model bytes").hexdigest()
    assert store.put(b"model bytes") == digest
    path = tmp_path / "artifacts" / "sha256" / digest[:2] / digest
    assert path.read_bytes() == b"model bytes"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]
    assert store.get(digest, owner="m/1") == b"model bytes"


def test_a_changed_artifact_is_refused_naming_the_version(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    digest = store.put(b"original")
    Path(store.location(digest)).write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="credit-risk/2 was changed after registration") as info:
        store.get(digest, owner="credit-risk/2")
    assert info.value.details["model_version"] == "credit-risk/2"


def test_a_missing_artifact_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    digest = store.put(b"x")
    Path(store.location(digest)).unlink()
    with pytest.raises(IntegrityError, match="missing"):
        store.get(digest, owner="m/1")


def test_fsspec_urls_work_the_same() -> None:
    store = ArtifactStore("memory://steward-test/artifacts")
    digest = store.put(b"remote bytes")
    assert store.get(digest, owner="m/1") == b"remote bytes"
    store._fs.pipe_file(store.location(digest), b"evil")
    with pytest.raises(IntegrityError):
        store.get(digest, owner="m/1")
