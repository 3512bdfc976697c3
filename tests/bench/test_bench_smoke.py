"""The registry benchmark still runs (our side only, small sizes); figures are not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
