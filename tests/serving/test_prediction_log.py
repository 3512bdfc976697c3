"""The prediction log: what goes in comes out, typed, through crashes, failures, compaction and concurrent reads."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import fsspec
import numpy as np
import pandas as pd
import pytest

from modelsteward.errors import InvalidArgument, StoreUnavailable
from modelsteward.serving.feedback_log import FeedbackBatch, FeedbackLog, join_feedback
from modelsteward.serving.log_compactor import compact
from modelsteward.serving.log_storage import LocalStorage
from modelsteward.serving.prediction_log import (
    LogFull,
    LogUnavailable,
    PredictionBatch,
    PredictionLog,
    connect,
    count,
    list_parts,
    query,
    scan_sql,
)

DAY1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY2 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def batch(i: int, rows: int = 1, **fields: object) -> PredictionBatch:
    ids = [f"p{i}-{j}" for j in range(rows)]
    values = {
        "request_id": f"r{i}",
        "prediction_ids": ids,
        "inputs": {"x": np.arange(rows, dtype=np.float64) + i, "region": ["north"] * rows},
        "outputs": {"score": np.full(rows, 0.5)},
        "model": "credit",
        "version": 1,
        "ref": "credit@production",
        "latency_ms": 1.5,
    }
    values.update(fields)
    return PredictionBatch(**values)  # type: ignore[arg-type]


@pytest.fixture
def root(tmp_path: Path) -> str:
    return str(tmp_path / "inference")


@pytest.fixture
def make_log(root: str) -> Iterator[type[PredictionLog]]:
    logs: list[PredictionLog] = []

    def make(**kwargs: object) -> PredictionLog:
        kwargs.setdefault("worker", "w1")
        kwargs.setdefault("flush_interval", 0.05)
        log = PredictionLog(kwargs.pop("root", root), **kwargs)  # type: ignore[arg-type]
        logs.append(log)
        return log

    yield make  # type: ignore[misc]
    for log in logs:
        try:
            log.close(timeout=2)
        except LogUnavailable:
            pass


def parts(root: str) -> list[str]:
    return sorted(glob.glob(f"{root}/**/*.parquet", recursive=True))


def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class FailingWrites:
    """A stand-in for the storage's write: fails ``failures`` times (forever with None), then writes."""

    def __init__(self, storage: LocalStorage, failures: int | None) -> None:
        self.real = storage.write_parquet
        self.failures = failures
        self.calls = 0

    def __call__(self, *args: object) -> None:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise OSError(28, "No space left on device")
        self.real(*args)  # type: ignore[arg-type]


# -- what goes in comes out -------------------------------------------------------------------------------------


def test_rows_written_equal_rows_appended_per_deployment_and_date(make_log, root) -> None:
    log = make_log()
    for i in range(30):
        log.append("credit-risk", batch(i, ts=DAY1))
    for i in range(30, 40):
        log.append("credit-risk", batch(i, rows=7, ts=DAY2))
    for i in range(40, 45):
        log.append("churn", batch(i, rows=3))  # ts None: the time of append
    log.flush()

    assert count(root) == 30 + 70 + 15
    assert count(root, "credit-risk") == 100
    assert count(root, "churn") == 15
    assert log.rows_written == 115 and log.queue_depth == 0
    per_day = duckdb.sql(f"SELECT deployment, CAST(date AS VARCHAR), count(*) FROM {scan_sql(root)} GROUP BY ALL")
    assert set(per_day.fetchall()) == {
        ("credit-risk", "2026-03-01", 30),
        ("credit-risk", "2026-03-02", 70),
        ("churn", datetime.now(UTC).date().isoformat(), 15),
    }
    assert os.path.isdir(f"{root}/deployment=credit-risk/date=2026-03-02")
    names = [os.path.basename(p) for p in parts(root)]
    assert all(n.startswith("part-w1-") for n in names) and len(set(names)) == len(names)


def test_rows_of_a_request_share_its_fields_and_keep_their_order(make_log, root) -> None:
    log = make_log()
    log.append("d", batch(1, rows=4, arm="challenger", version=2, step="score", status="ok", ts=DAY1))
    log.close()
    df = query(root, order_by="prediction_id")
    assert df["prediction_id"].tolist() == ["p1-0", "p1-1", "p1-2", "p1-3"]
    assert df["in_x"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert set(df["request_id"]) == {"r1"} and set(df["arm"]) == {"challenger"} and set(df["step"]) == {"score"}
    assert set(df["version"]) == {2} and set(df["ref"]) == {"credit@production"}
    assert (df["ts"] == pd.Timestamp(DAY1)).all()


def test_typed_columns_round_trip_with_nulls(make_log, root) -> None:
    log = make_log()
    when = np.array(["2026-01-01T10:00", "NaT"], dtype="datetime64[us]")
    log.append(
        "typed",
        PredictionBatch(
            request_id="r",
            prediction_ids=["a", "b"],
            inputs={
                "i": np.array([1, 2], dtype=np.int64),
                "f": np.array([1.5, np.nan]),
                "s": ["x", None],
                "b": np.array([True, False]),
                "nb": [True, None],
                "t": when,
                "pt": [datetime(2026, 1, 2, tzinfo=UTC), None],
                "n": [None, None],
                "ni": pd.Series([3, None], dtype="Int64"),  # a Series keeps pandas' nullable int
            },
            outputs={"label": np.array(["yes", "no"], dtype=object), "p": [0.25, None]},
            model="m",
            version=7,
            status="error",
            error="model failed",
        ),
    )
    log.close()
    con = duckdb.connect()
    types = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {scan_sql(root)}").fetchall()}
    assert types["in_i"] == "BIGINT" and types["in_f"] == "DOUBLE" and types["in_s"] == "VARCHAR"
    assert types["in_b"] == "BOOLEAN" and types["in_nb"] == "BOOLEAN" and types["in_ni"] == "BIGINT"
    assert types["in_t"].startswith("TIMESTAMP") and types["in_pt"].startswith("TIMESTAMP")
    assert types["out_label"] == "VARCHAR" and types["out_p"] == "DOUBLE"
    assert types["version"] == "BIGINT" and types["latency_ms"] == "DOUBLE"
    assert types["ts"] == "TIMESTAMP WITH TIME ZONE"
    assert types["deployment"] == "VARCHAR" and types["date"] == "DATE"
    rows = con.execute(
        f"SELECT in_i, in_f, in_s, in_b, in_nb, in_t, in_n, out_label, out_p, status, error, latency_ms "
        f"FROM {scan_sql(root)} ORDER BY prediction_id"
    ).fetchall()
    assert rows[0][:7] == (1, 1.5, "x", True, True, datetime(2026, 1, 1, 10, 0), None)
    assert rows[0][7:] == ("yes", 0.25, "error", "model failed", None)
    assert rows[1][:7] == (2, None, None, False, None, None, None)  # NaN and NaT are stored as null
    assert rows[1][7:9] == ("no", None)


def test_a_column_whose_type_changes_within_a_flush_is_promoted_or_stored_as_text(make_log, root) -> None:
    log = make_log(flush_interval=60)
    log.append("d", batch(1, inputs={"a": np.array([1]), "b": [1], "c": [{"k": 1}]}))
    log.append("d", batch(2, inputs={"a": np.array([2.5]), "b": ["two"], "c": [None]}))
    log.append("d", batch(3, inputs={"a": [3], "b": [3.5], "c": ["text"]}))
    log.flush()
    assert log.write_errors == 0 and log.files_written == 1
    df = query(root, order_by="prediction_id")
    assert df["in_a"].tolist() == [1.0, 2.5, 3.0]  # int and float: float
    assert df["in_b"].tolist() == ["1", "two", "3.5"]  # numbers and text: text
    assert df["in_c"].tolist()[0] == '{"k":1}' and df["in_c"].tolist()[2] == "text"


def test_schema_differences_across_batches_and_parts_are_read_by_name(make_log, root) -> None:
    log = make_log(flush_interval=60)
    v1 = {"x": [1.0], "region": ["north"]}
    v2 = {"x": [2.0], "income": [52_000]}
    log.append("d", batch(1, inputs=v1, version=1))
    log.append("d", batch(2, inputs=v2, version=2, outputs={"score": [0.1], "label": ["no"]}))  # same flush
    log.flush()
    log.append("d", batch(3, inputs={"income": [1_000]}, version=3, outputs={}))  # another part
    log.flush()
    assert len(parts(root)) == 2
    df = query(root, order_by="prediction_id")
    assert df["version"].tolist() == [1, 2, 3]
    assert df["in_x"].tolist()[:2] == [1.0, 2.0] and pd.isna(df["in_x"].iloc[2])
    assert df["in_region"].iloc[0] == "north" and pd.isna(df["in_region"].iloc[1])
    assert pd.isna(df["in_income"].iloc[0]) and df["in_income"].tolist()[1:] == [52_000, 1_000]
    assert df["out_label"].iloc[1] == "no"
    # The plain glob most tools would use reads the same dataset.
    glob_count = duckdb.sql(
        f"SELECT count(*), count(in_income) FROM read_parquet('{root}/**/*.parquet', "
        "hive_partitioning=true, union_by_name=true)"
    ).fetchall()
    assert glob_count == [(3, 2)]


def test_empty_dataset_reads_as_no_rows(root) -> None:
    assert count(root) == 0
    assert query(root, "arm = 'champion'").empty


# -- flushing and closing ---------------------------------------------------------------------------------------


def test_close_flushes_everything_and_then_refuses_rows(make_log, root) -> None:
    log = make_log(flush_interval=60)
    for i in range(100):
        log.append("d", batch(i))
    assert count(root) == 0
    log.close()
    log.close()  # idempotent
    assert count(root) == 100 and log.closed
    with pytest.raises(LogUnavailable) as caught:
        log.append("d", batch(101))
    assert isinstance(caught.value, StoreUnavailable) and caught.value.http_status == 503


def test_rows_are_written_every_flush_interval_without_a_flush_call(make_log, root) -> None:
    log = make_log(flush_interval=0.02)
    log.append("d", batch(1))
    wait_until(lambda: log.rows_written == 1)
    assert count(root) == 1


def test_max_buffer_rows_writes_before_the_interval(make_log, root) -> None:
    log = make_log(flush_interval=60, max_buffer_rows=100)
    for i in range(25):
        log.append("d", batch(i, rows=5))
    wait_until(lambda: log.rows_written >= 100)


def test_invalid_batches_are_refused_at_append(make_log) -> None:
    log = make_log()
    with pytest.raises(InvalidArgument):
        log.append("d", batch(1, prediction_ids=["a", "b"]))  # two ids, one value per column
    with pytest.raises(InvalidArgument):
        log.append("d", batch(1, inputs={"x": 1.0}))  # a scalar, not a column
    with pytest.raises(InvalidArgument):
        log.append("../etc", batch(1))
    with pytest.raises(InvalidArgument):
        log.append("d", batch(1, ts="yesterday"))
    with pytest.raises(InvalidArgument):
        log.append("d", batch(1, ts=True))
    with pytest.raises(InvalidArgument):
        log.append("d", {"request_id": "r"})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        PredictionLog("x", worker="bad/name")
    with pytest.raises(InvalidArgument):
        count("x", "../etc")
    assert log.queue_depth == 0


def test_part_names_never_collide_when_a_worker_name_comes_back(make_log, root) -> None:
    for _ in range(2):
        log = make_log(worker="gateway-0")
        log.append("d", batch(1))
        log.close()
    assert count(root) == 2 and len(parts(root)) == 2


def test_a_forked_child_cannot_use_its_parents_log(make_log) -> None:
    log = make_log()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            log.append("d", batch(1))
            os.write(write, b"appended")
        except LogUnavailable as e:
            os.write(write, str(e).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert b"before the process forked" in os.read(read, 1000)
    log.append("d", batch(1))  # the parent's log still works
    log.flush()
    assert log.rows_written == 1


# -- failures ---------------------------------------------------------------------------------------------------


def test_failed_writes_keep_the_rows_and_retry_with_counters_and_callback(make_log, root) -> None:
    errors: list[BaseException] = []
    log = make_log(flush_interval=0.01, retry_initial=0.01, retry_max=0.05, on_error=errors.append)
    failing = FailingWrites(log._storage, failures=3)
    log._storage.write_parquet = failing  # type: ignore[method-assign]
    for i in range(50):
        log.append("d", batch(i))
    wait_until(lambda: log.write_errors >= 1)
    assert isinstance(log.last_error, OSError) and "No space" in log.stats()["last_error"]
    log.flush(timeout=5)
    assert log.write_errors == 3 and len(errors) == 3 and isinstance(errors[0], OSError)
    assert log.last_error is None and log.queue_depth == 0
    assert count(root) == 50 and log.rows_written == 50
    assert not glob.glob(f"{root}/**/.tmp-*", recursive=True)


def test_a_batch_that_cannot_be_stored_is_dropped_loudly_without_blocking_the_others(make_log, root) -> None:
    errors: list[BaseException] = []
    log = make_log(flush_interval=60, on_error=errors.append)
    bad = batch(1)
    log.append("d", batch(0))
    log.append("d", bad)
    log.append("d", batch(2))
    bad.inputs["region"].append("one value too many")  # mutated after append: no longer one value per row
    log.flush()
    assert count(root) == 2 and log.rows_dropped == 1 and log.queue_depth == 0
    assert len(errors) == 1 and log.stats()["rows_dropped"] == 1 and log.write_errors == 0
    log.append("d", batch(3))  # the log goes on
    log.flush()
    assert count(root) == 3


def test_flush_and_close_say_when_rows_cannot_be_written(make_log) -> None:
    log = make_log(retry_initial=0.01, retry_max=0.02)
    log._storage.write_parquet = FailingWrites(log._storage, failures=None)  # type: ignore[method-assign]
    log.append("d", batch(1, rows=3))
    with pytest.raises(LogUnavailable, match="could not write 3 rows"):
        log.flush(timeout=0.2)
    assert log.queue_depth == 3 and log.write_errors >= 1
    with pytest.raises(LogUnavailable):
        log.close(timeout=0.1)


def test_back_pressure_refuses_batches_beyond_max_queue_rows_and_loses_nothing(make_log, root) -> None:
    log = make_log(max_buffer_rows=10, max_queue_rows=100, retry_initial=0.01, retry_max=0.02)
    failing = FailingWrites(log._storage, failures=None)
    log._storage.write_parquet = failing  # type: ignore[method-assign]
    accepted = 0
    with pytest.raises(LogFull) as caught:
        for i in range(1000):
            log.append("d", batch(i, rows=7))
            accepted += 7
    assert caught.value.http_status == 503 and caught.value.details["max_queue_rows"] == 100
    assert 94 <= accepted <= 100 and log.queue_depth == accepted and log.rows_rejected == 7
    failing.failures = 0  # the disk is back
    log.flush(timeout=5)
    assert count(root) == accepted and log.queue_depth == 0
    log.append("d", batch(5000))  # accepted again
    log.flush()
    assert count(root) == accepted + 1


def test_kill_9_leaves_a_readable_dataset_with_every_flushed_row(tmp_path: Path) -> None:
    root = str(tmp_path / "inference")
    code = (
        "import sys, time\n"
        "from modelsteward.serving.prediction_log import PredictionBatch, PredictionLog\n"
        "log = PredictionLog(sys.argv[1], worker='victim', flush_interval=0.02)\n"
        "i, last = 0, -1\n"
        "while True:\n"
        "    log.append('crash', PredictionBatch(request_id=str(i), prediction_ids=[str(i)],\n"
        "        inputs={'x': [i], 'name': ['n%d' % i]}, outputs={'y': [i * 0.5]}, model='m', version=1))\n"
        "    i += 1\n"
        "    if log.rows_written != last:\n"
        "        last = log.rows_written\n"
        "        print(last, log.files_written, flush=True)\n"
        "    if i % 50 == 0:\n"
        "        time.sleep(0.0005)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, root], stdout=subprocess.PIPE, text=True)
    try:
        written = 0
        assert child.stdout is not None
        for line in child.stdout:
            written, files = map(int, line.split())
            if written >= 3000 and files >= 5:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL and written >= 3000
    # Everything flushed before the kill is there, and whatever was being written is invisible.
    df = query(root, columns="in_x, in_name, out_y")
    assert len(df) >= written
    assert sorted(df["in_x"]) == list(range(len(df)))  # a prefix of what was appended, no gap, no duplicate
    assert (df["out_y"] == df["in_x"] * 0.5).all()
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/**/*.parquet')").fetchall() == [(len(df),)]


def test_concurrent_readers_never_fail_while_writing_and_compacting(make_log, root) -> None:
    log = make_log(flush_interval=0.005)
    stop = threading.Event()
    problems: list[BaseException] = []
    seen: list[int] = []

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(count(root))
                query(root, "in_x >= 0", columns="count(*)")
            except BaseException as e:  # noqa: BLE001
                problems.append(e)

    merged: list[int] = []

    def compact_loop() -> None:
        while not stop.is_set():
            try:
                merged.append(compact(root, min_files=2, min_age=0, grace=0.05).merged_parts)
            except BaseException as e:  # noqa: BLE001
                problems.append(e)
            time.sleep(0.01)

    threads = [threading.Thread(target=read), threading.Thread(target=compact_loop)]
    for t in threads:
        t.start()
    appended = 0
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        log.append("d", batch(appended))
        appended += 1
        if appended % 20 == 0:
            time.sleep(0.002)
    log.flush()
    time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert not problems, problems[:3]
    assert seen == sorted(seen) and len(seen) > 5  # never a duplicate nor a missing row seen along the way
    assert max(seen) <= appended and count(root) == appended
    assert sum(merged) > 10  # the compactor did merge parts under the readers' feet


# -- compaction -------------------------------------------------------------------------------------------------


def write_small_parts(make_log, n: int, deployment: str = "d") -> PredictionLog:
    log = make_log(flush_interval=60)
    for i in range(n):
        log.append(deployment, batch(i, rows=3, ts=DAY1))
        log.flush()
    return log


def test_compaction_keeps_every_row_and_reduces_the_file_count(make_log, root) -> None:
    write_small_parts(make_log, 12)
    before = query(root, order_by="prediction_id")
    assert len(parts(root)) == 12
    report = compact(root, min_files=4, target_rows=30, min_age=0, grace=0)
    assert report.merged_parts == 12 and report.written_parts == 2 and report.deleted_parts == 12
    assert not report.errors and report.rows == 36
    assert len(parts(root)) == 2 and not glob.glob(f"{root}/**/_compaction-*", recursive=True)
    after = query(root, order_by="prediction_id")
    pd.testing.assert_frame_equal(before, after)
    assert compact(root, min_files=2, target_rows=30, min_age=0, grace=0).merged_parts == 0  # both are big now


def test_compaction_leaves_partitions_with_few_or_young_parts_alone(make_log, root) -> None:
    write_small_parts(make_log, 5)
    assert compact(root, min_files=8, min_age=0).merged_parts == 0
    assert compact(root, min_files=2, min_age=3600).merged_parts == 0
    assert len(parts(root)) == 5


def test_during_the_grace_period_readers_see_each_row_once(make_log, root) -> None:
    write_small_parts(make_log, 8)
    report = compact(root, min_files=2, min_age=0, grace=3600)
    assert report.written_parts == 1 and report.pending == 1 and report.deleted_parts == 0
    assert len(parts(root)) == 9  # the merged part and its 8 sources
    assert count(root) == 24 and len(list_parts(root)) == 1
    glob_rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/**/*.parquet')").fetchall()[0][0]
    assert glob_rows == 48  # what a plain glob shows in the meantime: documented
    later = compact(root, min_files=2, min_age=0, grace=0)  # the next run, once the grace period is over
    assert later.deleted_parts == 8 and later.merged_parts == 0
    assert len(parts(root)) == 1 and count(root) == 24


def test_a_compaction_that_died_half_way_leaves_the_dataset_whole(make_log, root) -> None:
    write_small_parts(make_log, 4)
    directory = f"{root}/deployment=d/date=2026-03-01"
    sources = sorted(os.listdir(directory))
    # Died after its manifest, before its merged part appeared; and another left a temporary file behind.
    Path(directory, "_compaction-dead.json").write_text(
        f'{{"merged": "part-compacted-dead.parquet", "sources": {sources!r}, "created": 0}}'.replace("'", '"')
    )
    Path(directory, ".tmp-part-compacted-dead.parquet.tmp").write_bytes(b"PAR1 half a file")
    assert count(root) == 12
    report = compact(root, min_files=2, min_age=0, grace=0, stale_after=0)
    assert report.deleted_temporary == 1 and report.merged_parts == 4 and not report.errors
    assert count(root) == 12 and len(parts(root)) == 1
    assert sorted(os.listdir(directory)) == [os.path.basename(parts(root)[0])]


def test_temporary_files_are_never_read(make_log, root) -> None:
    write_small_parts(make_log, 1)
    directory = f"{root}/deployment=d/date=2026-03-01"
    Path(directory, ".tmp-part-w9-x-000001.parquet.tmp").write_bytes(b"PAR1 truncated")
    assert count(root) == 3
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/**/*.parquet')").fetchall() == [(3,)]


# -- feedback ---------------------------------------------------------------------------------------------------


def test_feedback_joins_predictions_on_prediction_id(make_log, root, tmp_path: Path) -> None:
    log = make_log()
    log.append("credit", batch(1, rows=3))
    log.append("credit", batch(2, rows=2, arm="shadow", prediction_ids=["p1-0", "p1-1"]))  # same ids, other arm
    log.append("churn", batch(3, rows=1, prediction_ids=["p1-0"]))  # same id, other deployment
    log.close()
    feedback_root = str(tmp_path / "feedback")
    fb = FeedbackLog(feedback_root, worker="w1", flush_interval=0.05)
    fb.append("credit", FeedbackBatch(prediction_ids=["p1-0", "p1-2"], actual=[1, 0], ts=DAY1))
    fb.append("credit", FeedbackBatch(prediction_ids=["p1-0"], actual=[0], ts=DAY2))  # a correction: latest wins
    fb.append("credit", FeedbackBatch(prediction_ids=["p1-2"], actuals={"amount": [120.5]}))  # a named target
    fb.close()
    assert count(feedback_root) == 4

    joined = join_feedback(root, feedback_root, deployment="credit")
    got = sorted(zip(joined["prediction_id"], joined["arm"], joined["actual"], joined["actual_amount"], strict=True))
    assert [g[:3] for g in got] == [("p1-0", "champion", 0), ("p1-0", "shadow", 0), ("p1-2", "champion", 0)]
    assert pd.isna(got[0][3]) and got[2][3] == 120.5
    assert (joined["deployment"] == "credit").all() and "feedback_ts" in joined.columns

    everything = join_feedback(root, feedback_root, how="left")
    assert len(everything) == 3 + 2 + 1 and everything["actual"].isna().sum() == 3  # p1-1 twice, churn once


def test_feedback_refuses_batches_without_values(tmp_path: Path) -> None:
    fb = FeedbackLog(str(tmp_path / "fb"), worker="w1")
    with pytest.raises(InvalidArgument):
        fb.append("d", FeedbackBatch(prediction_ids=["a"]))
    with pytest.raises(InvalidArgument):
        fb.append("d", FeedbackBatch(prediction_ids=["a"], actual=[1, 2]))
    fb.close()


# -- fsspec -----------------------------------------------------------------------------------------------------


def test_an_fsspec_memory_root_works_end_to_end(make_log) -> None:
    url = f"memory://steward-{uuid.uuid4().hex[:8]}/inference"
    try:
        log = make_log(root=url)
        for i in range(6):
            log.append("d", batch(i, rows=2, ts=DAY1))
            log.flush()
        assert count(url) == 12 and count(url, "d") == 12
        assert query(url, "in_x >= 3", columns="count(*) AS n")["n"].iloc[0] == 7
        fs, path = fsspec.core.url_to_fs(url)
        names = [p.rsplit("/", 1)[1] for p in fs.find(path)]
        assert len(names) == 6 and not [n for n in names if n.endswith(".tmp")]
        report = compact(url, min_files=2, min_age=0, grace=0)
        assert report.merged_parts == 6 and count(url) == 12 and len(fs.find(path)) == 1
        with connect(url) as con:
            assert con.execute(f"SELECT sum(in_x) FROM {scan_sql(url)}").fetchone()[0] == sum(
                i + j for i in range(6) for j in range(2)
            )
    finally:
        fs, path = fsspec.core.url_to_fs(url)
        if fs.exists(path):
            fs.rm(path, recursive=True)
