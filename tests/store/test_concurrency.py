"""Many clients at once on one store: version numbers, compare-and-set aliases and the audit chain hold."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from modelsteward import Conflict, LocalSteward, NotFound, Steward
from modelsteward.settings import Settings

MODEL = "m"
ALIAS = "challenger"


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0, 2.0, 3.0]})


def _model(value: float):
    return lambda df: df["x"] * value


def _register(st: Steward, value: float) -> int:
    return st.register_model(MODEL, _model(value), kind="python", input_example=_frame(), capture_git=False).version


def _current(st: Steward) -> int | None:
    aliases = {a.alias: a.version for a in st.list_aliases(MODEL)}
    return aliases.get(ALIAS)


def _move_once(st: Steward, step: int) -> tuple[int | None, int] | None:
    """One compare-and-set move of the alias to another existing version; None when someone moved it first."""
    try:
        latest = st.get_model(MODEL).latest_version
    except NotFound:
        return None
    if latest < 2:
        return None
    before = _current(st)
    if before is None:
        return None  # not seeded yet: an unset alias cannot be compared-and-set
    target = 1 + (step + (before or 0)) % latest
    if target == before:
        target = 1 + target % latest
    try:
        st.set_alias(MODEL, ALIAS, target, expected_version=before)
    except Conflict:
        return None
    return before, target


def _seed_alias(st: Steward) -> tuple[None, int]:
    """Point the alias at version 1 as soon as it exists, so that every later move can compare-and-set."""
    deadline = time.monotonic() + 30
    while True:
        try:
            st.set_alias(MODEL, ALIAS, 1)
            return None, 1
        except NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _registering_process(settings_json: str, worker: int, count: int, start: Any, out: str) -> None:
    st = LocalSteward(settings=Settings.model_validate_json(settings_json))
    start.wait(30)
    made = [(_register(st, 100 * worker + i), 100 * worker + i) for i in range(count)]
    st.close()
    Path(out).write_text(json.dumps(made))


def _moving_process(settings_json: str, worker: int, moves: int, start: Any, out: str) -> None:
    st = LocalSteward(settings=Settings.model_validate_json(settings_json))
    start.wait(30)
    made: list[tuple[int | None, int]] = []
    retries = 0
    deadline = time.monotonic() + 60
    step = worker
    while len(made) < moves and time.monotonic() < deadline:
        step += 1
        moved = _move_once(st, step)
        if moved is None:
            retries += 1
            time.sleep(0.005)
        else:
            made.append(moved)
    st.close()
    Path(out).write_text(json.dumps({"moves": made, "retries": retries}))


def _check_invariants(
    st: Steward, registered: list[tuple[int, float]], moves: list[tuple[int | None, int]], *, versions: int
) -> None:
    numbers = sorted(v for v, _ in registered)
    assert numbers == list(range(1, versions + 1)), "duplicate or missing version numbers"
    assert sorted(s.version for s in st.list_versions(MODEL)) == numbers
    assert st.get_model(MODEL).latest_version == versions
    for version, value in registered:
        # each number belongs to the registration that got it: its own artifact, checked and loaded
        loaded = st.load_model(f"{MODEL}/{version}")
        assert loaded.predict(_frame()).iloc[:, 0].tolist() == [value, 2 * value, 3 * value]

    events = sorted(st.list_events(model=MODEL, limit=1000), key=lambda e: e.seq)
    chain = [e for e in events if e.action == "alias.set"]
    assert len(chain) == len(moves)
    # one history: every move started from where the previous one left the alias (no lost update) ...
    assert chain[0].details["before"] is None
    for earlier, later in zip(chain, chain[1:], strict=False):
        assert later.details["before"] == earlier.details["after"]
    # ... and it is exactly the moves the clients were told succeeded, each from the version it expected
    assert sorted((e.details["before"] or 0, e.details["after"]) for e in chain) == sorted(
        (before or 0, after) for before, after in moves
    )
    assert _current(st) == chain[-1].details["after"]
    assert sorted(e.version for e in events if e.action == "version.registered") == numbers

    check = st.verify_audit()
    assert check.ok, check
    assert check.events == check.written == len(events) == versions + len(moves)


def test_processes_registering_and_moving_an_alias_at_once_keep_one_history(backend: Settings, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    settings_json = backend.model_dump_json()
    procs = []
    for worker in range(4):
        out = tmp_path / f"register-{worker}.json"
        procs.append((out, ctx.Process(target=_registering_process, args=(settings_json, worker, 5, start, str(out)))))
    for worker in range(2):
        out = tmp_path / f"move-{worker}.json"
        procs.append((out, ctx.Process(target=_moving_process, args=(settings_json, worker, 20, start, str(out)))))
    for _, p in procs:
        p.start()
    time.sleep(0.5)  # let the interpreters come up so that the clients really overlap
    start.set()
    st = LocalSteward(settings=backend)
    seeded = _seed_alias(st)
    for _, p in procs:
        p.join(90)
        assert p.exitcode == 0
    registered = [tuple(r) for out, _ in procs[:4] for r in json.loads(out.read_text())]
    results = [json.loads(out.read_text()) for out, _ in procs[4:]]
    moves = [seeded, *(tuple(m) for r in results for m in r["moves"])]
    assert len(moves) == 41, "a mover gave up: compare-and-set kept failing"

    _check_invariants(st, registered, moves, versions=20)
    st.close()


def _writer_process(data_dir: str, rounds: int, start: Any, out: str) -> None:
    st = LocalSteward(settings=Settings(data_dir=Path(data_dir), user="writer"))
    start.wait(30)
    written = []
    for i in range(rounds):
        version = _register(st, float(i))
        st.set_alias(MODEL, "production", version, expected_version=version - 1)
        written.append(version)
        time.sleep(0.05)  # spread the writes over the readers' loop
    st.close()
    Path(out).write_text(json.dumps(written))


def _reader_process(data_dir: str, start: Any, stop: Any, out: str) -> None:
    st = LocalSteward(settings=Settings(data_dir=Path(data_dir), user="reader"))
    start.wait(30)
    reads = 0
    errors: list[str] = []
    inconsistent: list[str] = []
    last_alias = last_count = 0
    while not stop.is_set():
        try:
            current = st.get_version(f"{MODEL}@production")
            listed = sorted(s.version for s in st.list_versions(MODEL))
            page = st.search_models(query=MODEL)
        except Exception as e:  # noqa: BLE001 - any error a reader sees is the failure under test
            errors.append(f"{type(e).__name__}: {e}")
            if len(errors) >= 20:
                break
            continue
        reads += 1
        # the writer only ever adds versions and moves the alias forward: no read may go back
        if listed != list(range(1, len(listed) + 1)) or len(listed) < last_count:
            inconsistent.append(f"versions {listed} after {last_count}")
        if current.version < last_alias:
            inconsistent.append(f"alias at {current.version} after {last_alias}")
        if [m.latest_version >= current.version for m in page.items] != [True]:
            inconsistent.append(f"search found {page.items} with the alias at {current.version}")
        last_alias, last_count = current.version, len(listed)
    st.close()
    Path(out).write_text(json.dumps({"reads": reads, "errors": errors, "inconsistent": inconsistent}))


def test_sqlite_readers_never_fail_while_one_process_writes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    st = LocalSteward(settings=Settings(data_dir=data_dir, user="tester"))
    _register(st, 0.5)
    st.set_alias(MODEL, "production", 1)
    with st.db.read() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"

    ctx = multiprocessing.get_context("spawn")
    start, stop = ctx.Event(), ctx.Event()
    writer_out = tmp_path / "writer.json"
    writer = ctx.Process(target=_writer_process, args=(str(data_dir), 30, start, str(writer_out)))
    readers = []
    for i in range(3):
        out = tmp_path / f"reader-{i}.json"
        readers.append((out, ctx.Process(target=_reader_process, args=(str(data_dir), start, stop, str(out)))))
    for p in [writer, *(p for _, p in readers)]:
        p.start()
    time.sleep(0.5)
    start.set()
    writer.join(60)
    time.sleep(0.3)  # the readers also see the final state
    stop.set()
    for _, p in readers:
        p.join(30)
        assert p.exitcode == 0
    assert writer.exitcode == 0

    for out, _ in readers:
        report = json.loads(out.read_text())
        assert report["errors"] == []
        assert report["inconsistent"] == []
        assert report["reads"] >= 10
    written = json.loads(writer_out.read_text())
    assert written == list(range(2, 32))
    assert sorted(s.version for s in st.list_versions(MODEL)) == list(range(1, 32))
    assert st.get_version(f"{MODEL}@production").version == 31
    assert len(st.list_events(model=MODEL, action="alias.set", limit=1000)) == 31
    check = st.verify_audit()
    assert check.ok and check.events == check.written == 31 + 31, check
    st.close()


def test_http_clients_registering_and_moving_an_alias_at_once_keep_one_history(
    clean_postgres: str, tmp_path: Path, server_factory: Any
) -> None:
    settings = Settings(data_dir=tmp_path / "server-data", database_url=clean_postgres, user="server")
    registered: list[tuple[int, float]] = []
    moves: list[tuple[int | None, int]] = []
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def client(worker: int) -> None:
        try:
            with Steward(url=server.url) as st:
                barrier.wait(10)
                mine_registered, mine_moved, step = [], [], worker
                deadline = time.monotonic() + 60
                while (len(mine_registered) < 3 or len(mine_moved) < 5) and time.monotonic() < deadline:
                    if len(mine_registered) < 3:
                        value = 100.0 * worker + len(mine_registered)
                        mine_registered.append((_register(st, value), value))
                    if len(mine_moved) < 5:
                        step += 1
                        moved = _move_once(st, step)
                        if moved is None:
                            time.sleep(0.005)
                        else:
                            mine_moved.append(moved)
            with lock:
                registered.extend(mine_registered)
                moves.extend(mine_moved)
        except Exception as e:  # noqa: BLE001 - reported to the test thread below
            failures.append(f"client {worker}: {type(e).__name__}: {e}")

    with server_factory(settings) as server:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        with Steward(url=server.url) as st:
            moves.append(_seed_alias(st))
        for t in threads:
            t.join(90)
        assert failures == []
        assert len(moves) == 41
        with Steward(url=server.url) as st:
            _check_invariants(st, registered, moves, versions=24)
