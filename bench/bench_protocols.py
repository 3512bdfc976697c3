"""Request decoding: the serving gateway's wire codecs against FastAPI/pydantic-style parsing, same run.

    .venv/bin/python bench/bench_protocols.py           # full run, ~1 minute; writes its section of BENCHMARKS.md
    .venv/bin/python bench/bench_protocols.py --quick   # fewer calls, a few seconds; writes no Markdown

Times decode (body bytes -> DataFrame conformed to the signature) and encode (output frame -> response
bytes) per request, for 1-row and 100-row requests, for the Open Inference Protocol v2 (JSON and binary,
one tensor per column and one [n, k] tensor) and the plain JSON protocol, next to the way a FastAPI
route does it: ``json.loads``, pydantic validation of the body, ``DataFrame.from_records``, ``conform``,
then ``frame_to_records``, a pydantic response model and ``json.dumps``. Everything runs in this
interpreter; there is no peer virtualenv, so ``--skip-peer`` is accepted and changes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, TypeAdapter
from workload import summarize, time_calls

from modelsteward.api.payloads import frame_from_json, frame_to_records
from modelsteward.domain.records import ColumnSpec, Signature
from modelsteward.serving.protocols import (
    decode_json_request,
    decode_request,
    encode_json_response,
    encode_response,
)
from modelsteward.stats.schema import conform

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
MARKDOWN = REPO / "BENCHMARKS.md"
SECTION = "## Request decoding"
ROW_COUNTS = (1, 100)
SEED = 0
FEATURES = [f"f{i}" for i in range(8)]
EXTRA = "customer_id"  # a sticky key the gateway routes on; not one of the model's inputs

# A credit model's inputs: numbers, an integer, two categories as strings and a flag.
MIXED = Signature(
    inputs=[
        ColumnSpec(name="age", type="integer"),
        *(ColumnSpec(name=f, type="number") for f in FEATURES),
        ColumnSpec(name="region", type="string"),
        ColumnSpec(name="segment", type="string"),
        ColumnSpec(name="owner", type="boolean"),
    ],
    outputs=[ColumnSpec(name="score", type="number"), ColumnSpec(name="label", type="string")],
)
# What KServe's sklearn server takes: one [n, 10] float tensor.
NUMERIC = Signature(
    inputs=[ColumnSpec(name=f"x{i}", type="number") for i in range(10)],
    outputs=[ColumnSpec(name="score", type="number"), ColumnSpec(name="label", type="string")],
)


class PredictionResponse(BaseModel):
    """The catalog route's response model (modelsteward.api.routes_catalog), as FastAPI validates it."""

    model_version: str
    columns: list[str]
    predictions: list[dict[str, Any]]


BODY_ADAPTER = TypeAdapter(dict[str, Any])  # the route declares `body: dict[str, Any]`
RESPONSE_ADAPTER = TypeAdapter(PredictionResponse)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the requests --------------------------------------------------------------------------------------


@dataclass
class Case:
    label: str
    rows: int
    decode: Callable[[], Any]
    encode: Callable[[], Any]
    check: Callable[[], pd.DataFrame]  # the decoded frame, to compare sides before timing


def mixed_frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    data: dict[str, Any] = {"age": rng.integers(18, 90, n)}
    for f in FEATURES:
        data[f] = np.round(rng.normal(0, 1000, n), 3)
    data["region"] = rng.choice(["north", "south", "east", "west"], n).tolist()
    data["segment"] = rng.choice(["retail", "sme", "corporate"], n).tolist()
    data["owner"] = rng.random(n) < 0.5
    return pd.DataFrame(data)


def outputs_frame(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
    scores = rng.random(n)
    frame = pd.DataFrame({"score": scores, "label": np.where(scores > 0.5, "approve", "refer").tolist()})
    return frame, [f"pred-{i:012d}" for i in range(n)]


def v2_column_inputs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    # MLServer's pandas codec: one tensor per column.
    types = {"i": "INT64", "f": "FP64", "b": "BOOL", "O": "BYTES"}
    inputs = []
    for name in frame.columns:
        values = frame[name]
        kind = values.dtype.kind if isinstance(values.dtype, np.dtype) else "O"
        inputs.append({"name": name, "shape": [len(frame)], "datatype": types[kind], "data": values.tolist()})
    return inputs


def binary_body(inputs: list[tuple[str, str, list[int], bytes]], **extra: Any) -> tuple[bytes, int]:
    # tritonclient's layout: the JSON header, then each tensor's little-endian bytes in input order.
    header = orjson.dumps(
        {
            "inputs": [
                {"name": n, "shape": s, "datatype": d, "parameters": {"binary_data_size": len(b)}}
                for n, d, s, b in inputs
            ],
            **extra,
        }
    )
    return header + b"".join(b for *_, b in inputs), len(header)


def serialize_bytes(values: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def v2_binary_columns(frame: pd.DataFrame) -> list[tuple[str, str, list[int], bytes]]:
    out = []
    for name in frame.columns:
        values = frame[name]
        kind = values.dtype.kind if isinstance(values.dtype, np.dtype) else "O"
        if kind == "O":
            out.append((name, "BYTES", [len(frame)], serialize_bytes(values.tolist())))
        else:
            datatype = {"i": "INT64", "f": "FP64", "b": "BOOL"}[kind]
            out.append(
                (name, datatype, [len(frame)], values.to_numpy().astype(values.dtype.newbyteorder("<")).tobytes())
            )
    return out


def fastapi_style(body: bytes, signature: Signature) -> pd.DataFrame:
    """What the catalog route does before predict: FastAPI parses, pydantic validates, from_records, conform."""
    doc = BODY_ADAPTER.validate_python(json.loads(body))
    return conform(frame_from_json(doc), signature, owner="credit/3")


def plain_style(body: bytes, signature: Signature) -> pd.DataFrame:
    """The least a hand-written handler does: json.loads, DataFrame.from_records, conform."""
    return conform(pd.DataFrame.from_records(json.loads(body)["instances"]), signature, owner="credit/3")


def plain_style_response(outputs: pd.DataFrame, prediction_ids: list[str]) -> bytes:
    doc = {
        "model_version": "credit/3",
        "prediction_ids": prediction_ids,
        "columns": [str(c) for c in outputs.columns],
        "predictions": frame_to_records(outputs),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def fastapi_style_response(outputs: pd.DataFrame, prediction_ids: list[str]) -> bytes:
    """frame_to_records, the response model, FastAPI's jsonable_encoder and JSONResponse's json.dumps."""
    response = RESPONSE_ADAPTER.validate_python(
        {
            "model_version": "credit/3",
            "columns": [str(c) for c in outputs.columns],
            "predictions": frame_to_records(outputs),
        }
    )
    content = jsonable_encoder(response)
    content["prediction_ids"] = prediction_ids
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def build_cases(n: int) -> list[Case]:
    rng = np.random.default_rng(SEED + n)
    frame = mixed_frame(n, rng)
    outputs, ids = outputs_frame(n, rng)
    records = orjson.dumps({"instances": frame.to_dict(orient="records")}, option=orjson.OPT_SERIALIZE_NUMPY)
    records = orjson.dumps({"id": "req-1", **orjson.loads(records)})
    # The same requests with a deployment's sticky key, a column outside the signature (allow_extra=True).
    sticky = frame.assign(**{EXTRA: [f"cust-{i:06d}" for i in range(n)]})
    records_extra = orjson.dumps(
        {"id": "req-1", "instances": sticky.to_dict(orient="records")}, option=orjson.OPT_SERIALIZE_NUMPY
    )
    split = orjson.dumps(
        {"id": "req-1", "dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    params = {"prediction_ids": ids, "model_version": "credit/3"}
    v2_json = orjson.dumps({"id": "req-1", "parameters": {"content_type": "pd"}, "inputs": v2_column_inputs(frame)})
    v2_bin, v2_bin_len = binary_body(v2_binary_columns(frame), id="req-1", parameters={"binary_data_output": True})
    v2_json_extra = orjson.dumps(
        {"id": "req-1", "parameters": {"content_type": "pd"}, "inputs": v2_column_inputs(sticky)}
    )
    v2_bin_extra, v2_bin_extra_len = binary_body(
        v2_binary_columns(sticky), id="req-1", parameters={"binary_data_output": True}
    )
    matrix = np.round(rng.normal(0, 1, (n, 10)), 6)
    v2_matrix_json = orjson.dumps(
        {"id": "req-1", "inputs": [{"name": "input-0", "shape": [n, 10], "datatype": "FP64", "data": matrix.ravel()}]},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    v2_matrix_bin, v2_matrix_len = binary_body(
        [("input-0", "FP32", [n, 10], matrix.astype("<f4").tobytes())],
        id="req-1",
        parameters={"binary_data_output": True},
    )

    def v2(body: bytes, length: int | None, signature: Signature, extra: bool = False) -> Callable[[], pd.DataFrame]:
        return lambda: (
            decode_request(body, header_length=length, signature=signature, owner="credit/3", allow_extra=extra).frame
        )

    def v2_encode(binary: bool) -> Callable[[], Any]:
        return lambda: encode_response(
            model_name="credit",
            model_version="3",
            request_id="req-1",
            outputs=outputs,
            parameters=params,
            binary=binary,
        )

    def rows(body: bytes, extra: bool = False) -> Callable[[], pd.DataFrame]:
        return lambda: decode_json_request(body, signature=MIXED, owner="credit/3", allow_extra=extra)[0]

    def rows_encode() -> bytes:
        return encode_json_response(model_version="credit/3", request_id="req-1", prediction_ids=ids, outputs=outputs)

    mixed = f"{len(MIXED.inputs)} mixed columns"
    extra = f"{mixed} + 1 extra, `{EXTRA}`, `allow_extra=True`"
    return [
        Case(
            f"v2 JSON, one tensor per column ({mixed})",
            n,
            v2(v2_json, None, MIXED),
            v2_encode(False),
            v2(v2_json, None, MIXED),
        ),
        Case(
            f"v2 JSON, one tensor per column ({extra})",
            n,
            v2(v2_json_extra, None, MIXED, extra=True),
            v2_encode(False),
            v2(v2_json_extra, None, MIXED, extra=True),
        ),
        Case(
            f"v2 binary, one tensor per column ({mixed})",
            n,
            v2(v2_bin, v2_bin_len, MIXED),
            v2_encode(True),
            v2(v2_bin, v2_bin_len, MIXED),
        ),
        Case(
            f"v2 binary, one tensor per column ({extra})",
            n,
            v2(v2_bin_extra, v2_bin_extra_len, MIXED, extra=True),
            v2_encode(True),
            v2(v2_bin_extra, v2_bin_extra_len, MIXED, extra=True),
        ),
        Case(
            "v2 JSON, one [n, 10] FP64 tensor",
            n,
            v2(v2_matrix_json, None, NUMERIC),
            v2_encode(False),
            v2(v2_matrix_json, None, NUMERIC),
        ),
        Case(
            "v2 binary, one [n, 10] FP32 tensor",
            n,
            v2(v2_matrix_bin, v2_matrix_len, NUMERIC),
            v2_encode(True),
            v2(v2_matrix_bin, v2_matrix_len, NUMERIC),
        ),
        Case(f"JSON `instances` records ({mixed})", n, rows(records), rows_encode, rows(records)),
        Case(
            f"JSON `instances` records ({extra})",
            n,
            rows(records_extra, extra=True),
            rows_encode,
            rows(records_extra, extra=True),
        ),
        Case(f"JSON `dataframe_split` ({mixed})", n, rows(split), rows_encode, rows(split)),
        Case(
            f"`json.loads` + `from_records`, no pydantic: `instances` records ({mixed})",
            n,
            lambda: plain_style(records, MIXED),
            lambda: plain_style_response(outputs, ids),
            lambda: plain_style(records, MIXED),
        ),
        Case(
            f"FastAPI/pydantic style: `instances` records ({mixed})",
            n,
            lambda: fastapi_style(records, MIXED),
            lambda: fastapi_style_response(outputs, ids),
            lambda: fastapi_style(records, MIXED),
        ),
    ]


def check_same_frames(cases: list[Case]) -> None:
    """Every mixed-column decoder gives the baseline's frame (values; string dtypes may differ)."""
    baseline = cases[-1].check()
    for case in cases:
        if "mixed" in case.label:
            frame = case.check()
            if EXTRA in case.label:  # the extra column comes after the signature's, as pandas types strings
                assert list(frame.columns) == [*MIXED.input_names, EXTRA], case.label
                assert isinstance(frame[EXTRA].dtype, pd.StringDtype), case.label
                frame = frame[MIXED.input_names]
            pd.testing.assert_frame_equal(frame, baseline, check_dtype=False, obj=case.label)
            assert frame.dtypes.tolist()[:9] == baseline.dtypes.tolist()[:9], case.label


# -- running -------------------------------------------------------------------------------------------


def run(calls_by_rows: dict[int, int]) -> list[dict[str, Any]]:
    results = []
    for n in ROW_COUNTS:
        cases = build_cases(n)
        check_same_frames(cases)
        calls = calls_by_rows[n]
        for case in cases:
            say(f"  {n:>3} row(s): {case.label}")
            decode = summarize(time_calls(lambda _i, f=case.decode: f(), calls, warmup=calls // 10))
            encode = summarize(time_calls(lambda _i, f=case.encode: f(), calls, warmup=calls // 10))
            both = summarize(time_calls(lambda _i, c=case: (c.decode(), c.encode()), calls, warmup=calls // 10))
            results.append({"case": case.label, "rows": n, "decode": decode, "encode": encode, "total": both})
    return results


def us(summary: dict[str, Any], key: str = "median_ms") -> str:
    value = summary[key] * 1000
    return f"{value:,.0f} µs" if value >= 100 else f"{value:.1f} µs"


def table_lines(results: list[dict[str, Any]]) -> list[str]:
    baseline = {r["rows"]: r["total"]["median_ms"] for r in results if r["case"].startswith("FastAPI")}
    lines = [
        "| Request | Rows | Decode median (p90) | Encode median (p90) | Decode + encode median (p90) "
        "| vs FastAPI style |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ratio = baseline[r["rows"]] / r["total"]["median_ms"]
        if r["case"].startswith("FastAPI"):
            cell = "1.0x (baseline)"
        elif r["case"].startswith("`json.loads`"):
            cell = f"{ratio:.1f}x"
        else:
            cell = f"**{ratio:.1f}x faster**"
        lines.append(
            f"| {r['case']} | {r['rows']} | {us(r['decode'])} ({us(r['decode'], 'p90_ms')}) "
            f"| {us(r['encode'])} ({us(r['encode'], 'p90_ms')}) | {us(r['total'])} ({us(r['total'], 'p90_ms')}) "
            f"| {cell} |"
        )
    return lines


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("modelsteward", "pandas", "numpy", "pyarrow", "orjson", "pydantic", "fastapi"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "?"
    return found


def cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def render_section(result: dict[str, Any]) -> str:
    v = result["versions"]
    calls = result["calls"]
    lines = [
        SECTION,
        "",
        f"Command: `{result['command']}` (run {result['date']}, {result['elapsed_s']:.0f} s in all).",
        "",
        f"Machine: {platform.system()} {platform.release()} {platform.machine()}, {cpu()}, "
        f"{result['cores']} cores. Python {v['python']}, modelsteward {v['modelsteward']}, pandas {v['pandas']}, "
        f"NumPy {v['numpy']}, pyarrow {v['pyarrow']}, orjson {v['orjson']}, pydantic {v['pydantic']}, "
        f"FastAPI {v['fastapi']}.",
        "",
        *table_lines(result["results"]),
        "",
        "Per request, in one process, one case after the other: "
        + ", ".join(f"{calls[str(n)]:,} timed calls for {n}-row requests" for n in ROW_COUNTS)
        + " (after 10% untimed warm-up); the garbage collector stays on. *Decode* is body bytes to the "
        "DataFrame conformed to the signature (columns in order and types, nulls checked: what the model "
        "receives); *encode* is the output frame (`score` float, `label` string, plus one prediction id per "
        "row) to the response bytes; *decode + encode* times both in one call, separately from the other "
        "two columns (so it is not exactly their sum). No HTTP, no model: this is the codecs' share of the "
        "gateway's 1 ms overhead budget.",
        "",
        "- **v2, one tensor per column:** MLServer's pandas codec layout (INT64, FP64, BYTES and BOOL "
        "tensors), `modelsteward.serving.protocols.decode_request` / `encode_response`; binary: tritonclient's "
        "layout (JSON header, then little-endian buffers, BYTES with 4-byte length prefixes), outputs asked "
        "as binary too.",
        "- **v2, one [n, 10] tensor:** KServe's sklearn layout against a 10-number signature.",
        '- **JSON:** `decode_json_request` / `encode_json_response` on `{"instances": [{...}]}` and '
        '`{"dataframe_split": ...}` bodies.',
        "- **FastAPI/pydantic style** (the catalog's `/models/{name}/predict` today, without HTTP): "
        "`json.loads`, pydantic validation of the body as `dict[str, Any]`, `frame_from_json` "
        "(`DataFrame.from_records`) and `conform`; then `frame_to_records`, the `PredictionResponse` model, "
        "`jsonable_encoder` and `json.dumps` as FastAPI's `JSONResponse` does.",
        "- **`json.loads` + `from_records`, no pydantic:** the same without FastAPI's validation and "
        "encoding: `json.loads`, `DataFrame.from_records`, `conform`; `frame_to_records` and `json.dumps`.",
        "- Before timing, the script checks that every mixed-column decoder returns the same frame as the "
        "FastAPI-style path.",
    ]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, section: str) -> None:
    """Replace our section of ``path`` (up to the next ``## `` heading), keeping the rest."""
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls; writes no Markdown")
    parser.add_argument("--skip-peer", action="store_true", help="accepted for symmetry; there is no peer")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument("--markdown", type=Path, default=MARKDOWN, help="the file whose section to replace")
    parser.add_argument("--no-markdown", action="store_true", help="never write Markdown")
    args = parser.parse_args(argv)
    calls = {1: 500, 100: 200} if args.quick else {1: 5000, 100: 2000}
    started = time.perf_counter()
    say("decoding and encoding, ours and FastAPI style:")
    results = run(calls)
    result = {
        "benchmark": "protocols",
        "command": ".venv/bin/python bench/bench_protocols.py"
        + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
        "date": dt.date.today().isoformat(),
        "elapsed_s": time.perf_counter() - started,
        "cores": os.cpu_count(),
        "versions": versions(),
        "calls": {str(n): c for n, c in calls.items()},
        "results": results,
    }
    print("\n".join(table_lines(results)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        say(f"wrote {args.json}")
    if not args.quick and not args.no_markdown:
        write_markdown(args.markdown, render_section(result))
        say(f"wrote the section {SECTION!r} of {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
