"""The catalog service on both stores: transactions, concurrency, the event trail and integrity."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelsteward import IntegrityError, InvalidArgument, LocalSteward
from modelsteward.settings import Settings
from modelsteward.store.tables import GENESIS_HASH


def _model(value: float = 1.0):
    return lambda df: df["x"] * value


def _frame():
    import pandas as pd

    return pd.DataFrame({"x": [1.0, 2.0, 3.0]})


def test_concurrent_registrations_get_distinct_version_numbers(backend: Settings) -> None:
    st = LocalSteward(settings=backend)
    st.register_model("m", _model(), kind="python", input_example=_frame())

    def register(i: int) -> int:
        return st.register_model("m", _model(i), kind="python", input_example=_frame()).version

    with ThreadPoolExecutor(max_workers=6) as pool:
        versions = list(pool.map(register, range(24)))
    assert sorted(versions) == list(range(2, 26))
    assert st.get_model("m").latest_version == 25
    st.close()


def _move_alias_many_times(settings_json: str, start: int, rounds: int) -> None:
    st = LocalSteward(settings=Settings.model_validate_json(settings_json))
    for i in range(rounds):
        st.set_alias("m", "production", 1 + (start + i) % 3)
    st.close()


def test_two_processes_moving_one_alias_lose_no_update(backend: Settings) -> None:
    st = LocalSteward(settings=backend)
    for _ in range(3):
        st.register_model("m", _model(), kind="python", input_example=_frame())
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_move_alias_many_times, args=(backend.model_dump_json(), s, 15)) for s in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    moves = [e for e in st.list_events(model="m", limit=1000) if e.action == "alias.set"]
    assert len(moves) == 30
    # every move saw the state the previous one left: the trail is one consistent history
    chain = sorted(moves, key=lambda e: e.seq)
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.details["before"] == before.details["after"]
    assert st.get_version("m@production").version == chain[-1].details["after"]
    st.close()


def test_the_event_trail_is_hash_chained(backend: Settings) -> None:
    st = LocalSteward(settings=backend)
    st.register_model("m", _model(), kind="python", input_example=_frame())
    st.set_alias("m", "production", 1)
    with st.db.read() as conn:
        rows = conn.execute(sa.text("SELECT seq, prev_hash, hash FROM events ORDER BY seq")).all()
        head = conn.execute(sa.text("SELECT head_hash FROM catalog_state")).scalar()
    assert rows[0].prev_hash == GENESIS_HASH
    for earlier, later in zip(rows, rows[1:], strict=False):
        assert later.prev_hash == earlier.hash
    assert head == rows[-1].hash
    st.deploy("scoring", "m@production")
    st.put_monitor("m-drift", {"target": {"deployment": "scoring"}, "checks": [{"drift": {}}]})
    st.run_monitor("m-drift")  # figures with floats and nested details: they must hash the same once stored
    check = st.verify_audit()
    assert check.ok and check.events == check.written >= 5, check
    with st.db.write() as conn:
        conn.execute(sa.text("UPDATE events SET actor = 'mallory' WHERE seq = 2"))
    assert st.verify_audit().first_broken == 2
    st.close()


def test_a_failing_registration_leaves_nothing_behind(backend: Settings) -> None:
    st = LocalSteward(settings=backend)

    def broken(df):
        raise ValueError("cannot score")

    with pytest.raises(InvalidArgument, match="fails on its input example"):
        st.register_model("m", broken, kind="python", input_example=_frame())
    assert st.list_models() == []
    with st.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_versions")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar() == 0
    st.close()


def test_metadata_failure_rolls_back_the_whole_registration(backend: Settings, monkeypatch) -> None:
    from modelsteward.store import event_repo

    st = LocalSteward(settings=backend)

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(event_repo, "append_event", explode)
    with pytest.raises(RuntimeError):
        st.register_model("m", _model(), kind="python", input_example=_frame(), training_data=_frame())
    monkeypatch.undo()
    with st.db.read() as conn:
        for table in ("registered_models", "model_versions", "datasets", "version_datasets", "events"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
    st.close()


def test_a_tampered_artifact_is_refused_with_the_version_named(tmp_path: Path) -> None:
    st = LocalSteward(data_dir=tmp_path)
    v = st.register_model("credit-risk", _model(), kind="python", input_example=_frame())
    path = Path(st.catalog.artifacts.location(v.artifact.sha256))
    path.write_bytes(path.read_bytes() + b"!")
    fresh = LocalSteward(data_dir=tmp_path)  # a new process has no cached copy
    with pytest.raises(IntegrityError, match="credit-risk/1"):
        fresh.load_model("credit-risk/1")
    st.close()
    fresh.close()


def test_training_data_is_deduplicated_by_content(tmp_path: Path) -> None:
    st = LocalSteward(data_dir=tmp_path)
    a = st.register_model("a", _model(), kind="python", training_data=_frame())
    b = st.register_model("b", _model(), kind="python", training_data=_frame())
    assert a.datasets[0].content_hash == b.datasets[0].content_hash
    with st.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM datasets")).scalar() == 1
    st.close()


def test_registration_from_a_path_records_its_uri(tmp_path: Path) -> None:
    st = LocalSteward(data_dir=tmp_path / "d")
    path = tmp_path / "train.csv"
    _frame().to_csv(path, index=False)
    v = st.register_model("m", _model(), kind="python", training_data=str(path))
    dataset = st.get_dataset(v.datasets[0].content_hash)
    assert dataset.uri == str(path.resolve())
    assert dataset.name == "train.csv"
    assert dataset.fingerprint.row_count == 3
    st.close()


def test_artifacts_on_an_fsspec_url(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, artifact_url="memory://steward-artifacts-test/models")
    st = LocalSteward(settings=settings)
    v = st.register_model("m", _model(2.0), kind="python", input_example=_frame())
    assert st.catalog.artifacts.location(v.artifact.sha256).startswith("/steward-artifacts-test/models/sha256/")
    assert not (tmp_path / "artifacts").exists()  # nothing went to the local disk
    assert LocalSteward(settings=settings).predict("m/1", _frame())["x"].tolist() == [2.0, 4.0, 6.0]
    st.close()
