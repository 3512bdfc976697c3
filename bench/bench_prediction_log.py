"""The prediction log's writer against the obvious way (a Parquet file per request with pandas); into BENCHMARKS.md.

    .venv/bin/python bench/bench_prediction_log.py            # full run, about a minute; writes BENCHMARKS.md
    .venv/bin/python bench/bench_prediction_log.py --quick    # small sizes, a few seconds, no Markdown

Workload: requests of 1 row and of 100 rows, 10 input columns (8 floats, 1 int, 1 string), 3 outputs (a float
score, a string label, a bool flag), every request with its own id, model, version, reference and latency. The
batches are built before timing (the gateway builds them anyway to answer); the log receives them as it would.

- *append*: the cost of ``PredictionLog.append`` on the calling thread, writer idle (``flush_interval`` long).
- *end to end*: append N rows from the calling thread with the default settings (the writer thread converting and
  writing meanwhile, sharing the GIL), then ``flush()``; rows/s = N / that time; the rows are then counted with
  DuckDB and must all be there. When the caller outruns the writer by more than ``max_queue_rows`` (1,000,000),
  ``append`` refuses with ``LogFull``; the loop then waits 1 ms and sends the batch again, as a client retries a
  503, so the figure is the rate the writer sustains.
- *naive*: per request, ``pandas.DataFrame(...)`` of its rows with the same columns, then ``to_parquet`` (pyarrow,
  snappy) to its own file in the same hive layout, timed for a fixed number of requests; counted with DuckDB too.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modelsteward.serving.prediction_log import LogFull, PredictionBatch, PredictionLog, count  # noqa: E402

RESULTS = REPO / "bench" / "results"
MARKDOWN = REPO / "BENCHMARKS.md"
SECTION = "## Prediction log writer"
COMMAND = ".venv/bin/python bench/bench_prediction_log.py"


@dataclasses.dataclass(frozen=True)
class Sizes:
    append_calls: dict[int, int]  # rows per request -> appends timed per repeat
    e2e_rows: dict[int, int]  # rows per request -> rows written per repeat
    naive_requests: dict[int, int]  # rows per request -> requests written by the naive way
    repeats: int


FULL = Sizes({1: 200_000, 100: 20_000}, {1: 1_000_000, 100: 4_000_000}, {1: 2_000, 100: 1_000}, 3)
QUICK = Sizes({1: 20_000, 100: 2_000}, {1: 100_000, 100: 300_000}, {1: 200, 100: 100}, 1)
POOL = 1_000  # distinct batches, reused cyclically


def make_batches(rows: int, n: int, seed: int = 0) -> list[PredictionBatch]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        inputs: dict[str, Any] = {f"x{k}": rng.normal(size=rows) for k in range(8)}
        inputs["age"] = rng.integers(18, 90, rows)
        inputs["region"] = rng.choice(np.array(["north", "south", "east", "west"], dtype=object), rows)
        score = rng.random(rows)
        outputs = {"score": score, "label": np.where(score > 0.5, "yes", "no").astype(object), "flag": score > 0.9}
        out.append(
            PredictionBatch(
                request_id=f"req-{i}",
                prediction_ids=[f"req-{i}-{j}" for j in range(rows)],
                inputs=inputs,
                outputs=outputs,
                model="credit-risk",
                version=3,
                arm="champion",
                ref="credit-risk@production",
                latency_ms=float(rng.random() * 5),
            )
        )
    return out


def measure_append(rows: int, calls: int, repeats: int, pool: list[PredictionBatch], tmp: Path) -> dict[str, Any]:
    """Mean cost of append per call in a tight loop, with the writer asleep (long interval, big buffer)."""
    per_call = []
    for r in range(repeats):
        root = tmp / f"append-{rows}-{r}"
        log = PredictionLog(root, worker="bench", flush_interval=3600, max_buffer_rows=10**9, max_queue_rows=10**9)
        batches = [pool[i % len(pool)] for i in range(calls)]
        append = log.append
        gc.collect()
        started = time.perf_counter()
        for b in batches:
            append("credit-risk", b)
        per_call.append((time.perf_counter() - started) / calls)
        log.close(timeout=600)
        shutil.rmtree(root, ignore_errors=True)
    return {"us_per_call": statistics.median(per_call) * 1e6, "runs_us": [x * 1e6 for x in per_call], "calls": calls}


def measure_end_to_end(rows: int, total_rows: int, repeats: int, pool: list[PredictionBatch], tmp: Path) -> dict:
    runs = []
    for r in range(repeats):
        root = tmp / f"e2e-{rows}-{r}"
        log = PredictionLog(root, worker="bench")  # the defaults: 1 s interval, 50,000-row buffer, zstd
        n = total_rows // rows
        batches = [pool[i % len(pool)] for i in range(n)]
        refused = 0
        gc.collect()
        started = time.perf_counter()
        for b in batches:
            while True:
                try:
                    log.append("credit-risk", b)
                    break
                except LogFull:  # back-pressure, as a client would see a 503: wait a little, send again
                    refused += 1
                    time.sleep(0.001)
        appended = time.perf_counter()
        log.flush()
        elapsed = time.perf_counter() - started
        written = count(root)
        files = log.files_written
        log.close()
        if written != n * rows:
            raise SystemExit(f"end to end, {rows}-row requests: {written} rows counted, {n * rows} appended")
        runs.append(
            {
                "rows_per_s": n * rows / elapsed,
                "seconds": elapsed,
                "append_us_per_call": (appended - started) / n * 1e6,
                "files": files,
                "refused": refused,
                "bytes": sum(p.stat().st_size for p in root.rglob("*.parquet")),
            }
        )
        shutil.rmtree(root, ignore_errors=True)
    best = sorted(runs, key=lambda x: x["rows_per_s"])[len(runs) // 2]
    return {**best, "runs_rows_per_s": [x["rows_per_s"] for x in runs], "rows": total_rows // rows * rows}


def naive_frame(b: PredictionBatch) -> pd.DataFrame:
    n = len(b.prediction_ids)
    columns: dict[str, Any] = {
        "prediction_id": b.prediction_ids,
        "request_id": [b.request_id] * n,
        "arm": [b.arm] * n,
        "model": [b.model] * n,
        "version": [b.version] * n,
        "ref": [b.ref] * n,
        "step": [b.step] * n,
        "status": [b.status] * n,
        "error": [b.error] * n,
        "latency_ms": [b.latency_ms] * n,
        "ts": [pd.Timestamp.now(tz="UTC")] * n,
    }
    columns.update({f"in_{k}": v for k, v in b.inputs.items()})
    columns.update({f"out_{k}": v for k, v in b.outputs.items()})
    return pd.DataFrame(columns)


def measure_naive(rows: int, requests: int, pool: list[PredictionBatch], tmp: Path) -> dict[str, Any]:
    """The obvious way: a DataFrame and a Parquet file per request, written where the log would put it."""
    root = tmp / f"naive-{rows}"
    directory = root / "deployment=credit-risk" / f"date={dt.datetime.now(dt.UTC).date().isoformat()}"
    directory.mkdir(parents=True)
    gc.collect()
    started = time.perf_counter()
    for i in range(requests):
        naive_frame(pool[i % len(pool)]).to_parquet(directory / f"part-{uuid.uuid4().hex}.parquet", index=False)
    elapsed = time.perf_counter() - started
    written = count(root)
    if written != requests * rows:
        raise SystemExit(f"naive, {rows}-row requests: {written} rows counted, {requests * rows} written")
    shutil.rmtree(root, ignore_errors=True)
    return {"rows_per_s": requests * rows / elapsed, "seconds": elapsed, "requests": requests, "files": requests}


# -- the report -------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"os": f"{platform.system()} {platform.release()}", "cpu": cpu, "cores": os.cpu_count()}


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("modelsteward", "pyarrow", "duckdb", "pandas", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def fmt_rate(x: float) -> str:
    return f"{x:,.0f} rows/s"


def table_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for n in (1, 100):
        key = str(n)
        a, e, naive = result["append"][key], result["end_to_end"][key], result["naive"].get(key)
        ratio = f"{e['rows_per_s'] / naive['rows_per_s']:,.0f}x" if naive else "n/a"
        rows.append(
            (
                f"{n}-row requests",
                f"{a['us_per_call']:.2f} µs ({a['us_per_call'] / n * 1000:.0f} ns/row)",
                fmt_rate(e["rows_per_s"]),
                (fmt_rate(naive["rows_per_s"]) if naive else "not run") + f" | {ratio}",
            )
        )
    return rows


def print_table(result: dict[str, Any]) -> None:
    header = ("workload", "append (caller's cost)", "end to end, ours", "naive to_parquet | ours / naive")
    lines = [header, *table_rows(result)]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))


def render_section(result: dict[str, Any]) -> str:
    m, v = result["machine"], result["versions"]
    out = [
        SECTION,
        "",
        f"Command: `{COMMAND}` (run {result['date']}, {result['elapsed_s']:.0f} s in all).",
        "",
        f"Machine: {m['os']}, {m['cpu']}, {m['cores']} cores. Python {v['python']}, modelsteward "
        f"{v.get('modelsteward', '?')}, pyarrow {v.get('pyarrow', '?')}, DuckDB {v.get('duckdb', '?')}, "
        f"pandas {v.get('pandas', '?')}, NumPy {v.get('numpy', '?')}; local disk.",
        "",
        "| Requests | `append` on the caller's thread | Written end to end, ours | Naive: `to_parquet` per request "
        "| Ours / naive |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, append, ours, naive in table_rows(result):
        naive_rate, ratio = naive.split(" | ")
        ratio = f"**{ratio}**" if ratio != "n/a" else ratio
        out.append(f"| {label} | {append} | {ours} | {naive_rate} | {ratio} |")
    e1, e100 = result["end_to_end"]["1"], result["end_to_end"]["100"]
    out += [
        "",
        "Workload: 10 input columns (8 floats, 1 int, 1 string), 3 outputs (float, string, bool), one "
        "deployment, every request with its own ids, model, version, reference and latency; the batches are "
        "built before timing and reused from a pool of 1,000.",
        "",
        f"- **append**: mean over {result['sizes']['append_calls']['1']:,} (1-row) and "
        f"{result['sizes']['append_calls']['100']:,} (100-row) calls in a tight loop, writer asleep; median of "
        f"{result['sizes']['repeats']} runs. It validates the batch and puts a reference on a list under a lock: "
        "no Arrow work, no I/O. Python's garbage collector stays on.",
        f"- **end to end, ours**: append {e1['rows']:,} rows (1-row requests) or {e100['rows']:,} rows (100-row "
        "requests) from one thread with the default settings (flush every 1 s or 50,000 rows, zstd), while the "
        "writer thread converts and writes, then `flush()`; then DuckDB counts every row "
        f"(median of {result['sizes']['repeats']} runs). `LogFull` refusals (back-pressure at 1,000,000 queued "
        f"rows; the loop waits 1 ms and sends again, as a client retries a 503): {e1['refused']:,} and "
        f"{e100['refused']:,}, so the 100-row figure is what the writer sustains. With the writer running, the "
        f"calling loop averaged {e1['append_us_per_call']:.2f} µs per 1-row append (the two threads share the "
        f"GIL) and {e100['append_us_per_call']:.2f} µs per 100-row append, waits after refusals included. "
        f"Parts written: {e1['files']} and {e100['files']}.",
        "- **naive**: per request, `pandas.DataFrame` of its rows with the same columns, then "
        f"`to_parquet` to its own file in the same layout ({result['sizes']['naive_requests']['1']:,} and "
        f"{result['sizes']['naive_requests']['100']:,} requests), counted with DuckDB afterwards. Besides the "
        "speed, it leaves a file per request (and a half-written one on a crash).",
        "",
        "Raw figures: `bench/results/prediction_log.json`.",
        "",
    ]
    return "\n".join(out)


def write_markdown(path: Path, section: str) -> None:
    """Replace our section of ``path`` (up to the next ``## `` heading), keeping the rest; create it if needed."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    start = text.find(SECTION + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        rest = "" if end == -1 else "\n" + text[end + 1 :]
        text = text[:start] + section + rest
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The prediction log's writer vs a Parquet file per request.")
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds); no Markdown")
    parser.add_argument("--skip-peer", action="store_true", help="skip the naive to_parquet side; no Markdown")
    parser.add_argument("--json", type=Path, help="raw results (default bench/results/prediction_log[.scratch].json)")
    parser.add_argument("--markdown", type=Path, help="the file whose section to replace (default BENCHMARKS.md)")
    parser.add_argument("--no-markdown", action="store_true", help="never write Markdown")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    complete = not args.quick and not args.skip_peer
    started = time.perf_counter()
    pools = {n: make_batches(n, POOL, seed=n) for n in (1, 100)}
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "versions": versions(),
        "sizes": {
            "append_calls": {str(k): v for k, v in sizes.append_calls.items()},
            "e2e_rows": {str(k): v for k, v in sizes.e2e_rows.items()},
            "naive_requests": {str(k): v for k, v in sizes.naive_requests.items()},
            "repeats": sizes.repeats,
        },
        "append": {},
        "end_to_end": {},
        "naive": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-prediction-log-") as tmp:
        for n, pool in pools.items():
            print(f"{n}-row requests: append ...", flush=True)
            result["append"][str(n)] = measure_append(n, sizes.append_calls[n], sizes.repeats, pool, Path(tmp))
            print(f"{n}-row requests: end to end ...", flush=True)
            result["end_to_end"][str(n)] = measure_end_to_end(n, sizes.e2e_rows[n], sizes.repeats, pool, Path(tmp))
            if not args.skip_peer:
                print(f"{n}-row requests: naive to_parquet ...", flush=True)
                result["naive"][str(n)] = measure_naive(n, sizes.naive_requests[n], pool, Path(tmp))
    result["elapsed_s"] = time.perf_counter() - started
    print()
    print_table(result)

    out = args.json or RESULTS / ("prediction_log.json" if complete else "prediction_log.scratch.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nraw results: {out}")
    if complete and not args.no_markdown:
        target = args.markdown or MARKDOWN
        write_markdown(target, render_section(result))
        print(f"section '{SECTION}' of {target} updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
