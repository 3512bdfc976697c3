"""The benchmarks still run (our side only, small sizes); figures are not asserted here, only that they were
measured and that both sides agreed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_registry_benchmark_runs_quickly_on_our_side() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_registry.py"), "--quick", "--skip-peer"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((ROOT / "bench" / "results" / "registry.scratch.json").read_text())
    operations = result["ours"]["ops"]
    for name in ("register_tiny", "resolve_alias", "move_alias", "list_versions"):
        assert operations[name]["n"] > 0 and operations[name]["median_ms"] > 0, name


@pytest.mark.slow
def test_dask_benchmark_runs_on_small_sizes_and_finds_equal_results(tmp_path: Path) -> None:
    out = tmp_path / "dask.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_dask.py"), "--quick", "--log-mb", "12", "--rows", "20000",
         "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    monitor, scoring = result["monitor"], result["scoring"]
    assert monitor["check"]["equal"] and scoring["check"]["equal"]  # the script exits 1 otherwise
    assert monitor["local"]["rows"] == monitor["dask"]["rows"] == monitor["log"]["rows"] > 0
    assert monitor["local"]["drifted"] == ["f00", "f01", "f02", "f03"]
    assert scoring["check"]["rows"] == 20_000 and scoring["check"]["parts"] == scoring["input"]["row_groups"]
    for side in (monitor["dask"], scoring["dask"]):
        assert len(side["workers"]) == 2 and all(w["peak_rss"] > 0 for w in side["workers"])
    assert "## Past one machine: Dask" in proc.stdout
