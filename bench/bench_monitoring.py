"""Drift detection: Model Steward (profile precomputed) vs Evidently vs a plain scipy loop; into BENCHMARKS.md.

    .venv/bin/python bench/bench_monitoring.py            # 100k and 1M rows, ~6 minutes; writes BENCHMARKS.md
    .venv/bin/python bench/bench_monitoring.py --quick    # 100k rows only, under 2 minutes; writes no Markdown
    .venv/bin/python bench/bench_monitoring.py --study    # the drift-defaults study; writes docs/drift-defaults.md

Workload: 20 numeric + 5 categorical columns, reference and current of the same size, generated once with a fixed
seed and written to .npy files that every side reads; the current data drifts in 5 known columns. Each side runs in
its own process (so peak memory is its own): Model Steward builds the profile in one process (done once, at
registration) and detects drift in another that loads only the profile JSON and the current data (what a monitor
does); the scipy loop and Evidently (in its own virtualenv, bench/.peers/evidently) load both frames.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
MARKDOWN = REPO / "BENCHMARKS.md"
STUDY_DOC = REPO / "docs" / "drift-defaults.md"
SECTION = "## Drift detection"
PEER_DIR = BENCH_DIR / ".peers" / "evidently"
PEER_REQUIREMENTS = ["evidently>=0.7,<0.8", "pandas<3"]
RESULT_MARKER = "@@RESULT@@ "
REPEATS = 5  # our drift runs per size (median reported, best in brackets); the peers run once
SEED = 20261127
NUMERIC = 20
CATEGORICAL = 5
CATEGORY_SIZES = (3, 5, 12, 40, 150)
DRIFTED = {"n00": "mean +0.5 sd", "n01": "sd x1.5", "n02": "lognormal, mean +0.3 sd", "c0": "mix: 20 points moved",
           "c1": "new category at 15%"}  # fmt: skip


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the workload -------------------------------------------------------------------------------------------


def _numeric_column(j: int, rng: np.random.Generator, n: int, drift: bool) -> np.ndarray:
    """Column j's distribution (five families in turn); the drifted columns change as DRIFTED says."""
    family = j % 5
    if family == 0:
        x = rng.normal(10 * j, 1 + j, n)
        return x + 0.5 * (1 + j) if drift and j == 0 else x
    if family == 1:
        scale = 2.0 * (1.5 if drift and j == 1 else 1.0)
        return rng.normal(0, 1, n) * scale + j
    if family == 2:
        x = rng.lognormal(0, 0.75, n)
        return x + 0.3 * np.sqrt((np.exp(0.5625) - 1) * np.exp(0.5625)) if drift and j == 2 else x
    if family == 3:
        return rng.poisson(3 + j, n).astype(float)
    return rng.uniform(-j, j, n)


def _categorical_codes(j: int, rng: np.random.Generator, n: int, drift: bool) -> tuple[np.ndarray, list[str]]:
    k = CATEGORY_SIZES[j]
    weights = 1.0 / np.arange(1, k + 1)
    p = weights / weights.sum()
    names = [f"c{j}_{i}" for i in range(k + 1)]  # the last name exists only in drifted current data
    if drift and j == 0:
        p = p.copy()
        p[0] -= 0.2
        p[-1] += 0.2
    if drift and j == 1:
        p = np.append(p * 0.85, 0.15)
    else:
        p = np.append(p, 0.0)
    return rng.choice(k + 1, size=n, p=p).astype(np.int16), names


def write_workload(folder: Path, rows: int, seed: int = SEED) -> dict[str, Any]:
    """Reference and current data as .npy files (numeric matrix, categorical codes) plus names."""
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"rows": rows, "numeric": [f"n{j:02d}" for j in range(NUMERIC)], "categorical": {}}
    for side, drift, offset in (("reference", False, 0), ("current", True, 1)):
        rng = np.random.default_rng([seed, offset, rows])
        numeric = np.column_stack([_numeric_column(j, rng, rows, drift) for j in range(NUMERIC)])
        np.save(folder / f"{side}_numeric.npy", numeric)
        for j in range(CATEGORICAL):
            codes, names = _categorical_codes(j, rng, rows, drift)
            np.save(folder / f"{side}_c{j}.npy", codes)
            meta["categorical"][f"c{j}"] = names
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def load_frame(folder: Path, side: str, string_dtype: str | None = "str") -> pd.DataFrame:
    """One side's DataFrame: float64 columns, and text columns (pandas 3's Arrow-backed str, or object)."""
    meta = json.loads((folder / "meta.json").read_text())
    numeric = np.load(folder / f"{side}_numeric.npy")
    data: dict[str, Any] = {name: numeric[:, j] for j, name in enumerate(meta["numeric"])}
    for name, labels in meta["categorical"].items():
        values = np.asarray(labels, dtype=object)[np.load(folder / f"{side}_{name}.npy")]
        data[name] = pd.Series(values, dtype=string_dtype) if string_dtype else pd.Series(values)
    return pd.DataFrame(data)


def rss_mb() -> float:
    with contextlib.suppress(OSError, ValueError):
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- the sides, each run in its own process -------------------------------------------------------------


def side_profile(folder: Path, out: Path) -> dict[str, Any]:
    from modelsteward.stats.sketch import reference_sketch

    reference = load_frame(folder, "reference")
    base = rss_mb()
    started = time.perf_counter()
    profile = reference_sketch(reference)
    seconds = time.perf_counter() - started
    text = profile.model_dump_json()
    out.write_text(text)
    return {"seconds": seconds, "profile_bytes": len(text.encode()), "rss_base_mb": base, "peak_mb": peak_mb()}


def side_ours(folder: Path, profile_path: Path, repeats: int) -> dict[str, Any]:
    from modelsteward.stats.drift import detect_drift
    from modelsteward.stats.sketch import DriftProfile

    current = load_frame(folder, "current")
    profile = DriftProfile.model_validate_json(profile_path.read_text())  # as a monitor loads it from the store
    base = rss_mb()
    times, report = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        report = detect_drift(profile, current)
        times.append(time.perf_counter() - started)
    assert report is not None
    return {
        "seconds": statistics.median(times),
        "runs": times,
        "rss_base_mb": base,
        "peak_mb": peak_mb(),
        "flagged": report.drifted,
        "values": {r.column: [r.statistic, r.value] for r in report.rows},
    }


def side_scipy(folder: Path) -> dict[str, Any]:
    """The plain way: per column, scipy on the raw data; decided by the same rules as our defaults (exact values)."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    reference, current = load_frame(folder, "reference"), load_frame(folder, "current")
    base = rss_mb()
    started = time.perf_counter()
    flagged, values = [], {}
    for name in reference.columns:
        ref, cur = reference[name], current[name]
        if pd.api.types.is_numeric_dtype(ref.dtype):
            a, b = ref.to_numpy(), cur.to_numpy()
            ks = stats.ks_2samp(a, b)
            w = stats.wasserstein_distance(a, b) / a.std()
            values[name] = {"ks": float(ks.statistic), "ks_p_value": float(ks.pvalue), "wasserstein": float(w)}
            drifted = w >= 0.1 and ks.pvalue < 0.05
        else:
            table = pd.concat([ref.value_counts(), cur.value_counts()], axis=1).fillna(0).to_numpy().T
            chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
            js = jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum())
            values[name] = {"chisquare": float(chi2), "chisquare_p_value": float(p), "jensenshannon": float(js)}
            drifted = js >= 0.05 and p < 0.05
        if drifted:
            flagged.append(name)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_base_mb": base, "peak_mb": peak_mb(), "flagged": flagged, "values": values}


def side_evidently(folder: Path) -> dict[str, Any]:
    """Evidently's DataDriftPreset, computed only (Report.run, then the snapshot as a dict; no HTML)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, current = load_frame(folder, "reference", None), load_frame(folder, "current", None)
    meta = json.loads((folder / "meta.json").read_text())
    definition = DataDefinition(numerical_columns=meta["numeric"], categorical_columns=list(meta["categorical"]))
    base = rss_mb()
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    result = snapshot.dict()
    seconds = time.perf_counter() - started
    flagged, values = [], {}
    for metric in result["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        method, value, threshold = config["method"], float(metric["value"]), float(config["threshold"])
        drifted = value < threshold if "p_value" in method else value >= threshold
        values[config["column"]] = [method, value]
        if drifted:
            flagged.append(config["column"])
    import evidently

    return {
        "seconds": seconds,
        "rss_base_mb": base,
        "peak_mb": peak_mb(),
        "flagged": sorted(flagged),
        "values": values,
        "versions": {"evidently": evidently.__version__, "pandas": pd.__version__, "numpy": np.__version__},
    }


# -- the drift-defaults study ----------------------------------------------------------------------------

STUDY_REFERENCE = 10_000
STUDY_SIZES = (100, 300, 1_000, 3_000, 10_000, 100_000)
STUDY_SEEDS = 200  # one column per seed: one detect_drift call judges all seeds of a cell at once
LOGNORMAL_SD = float(np.sqrt((np.exp(0.5625) - 1) * np.exp(0.5625)))


def _numeric_scenarios() -> dict[str, Any]:
    normal = lambda rng, n, shape: rng.normal(0, 1, shape)  # noqa: E731
    lognormal = lambda rng, n, shape: rng.lognormal(0, 0.75, shape)  # noqa: E731
    poisson = lambda rng, n, shape: rng.poisson(3, shape).astype(float)  # noqa: E731
    return {
        "unchanged": (normal, lambda x: x),
        "mean +0.05 sd": (normal, lambda x: x + 0.05),
        "mean +0.1 sd": (normal, lambda x: x + 0.1),
        "mean +0.3 sd": (normal, lambda x: x + 0.3),
        "mean +0.5 sd": (normal, lambda x: x + 0.5),
        "sd x1.2": (normal, lambda x: x * 1.2),
        "sd x1.5": (normal, lambda x: x * 1.5),
        "lognormal, unchanged": (lognormal, lambda x: x),
        "lognormal, mean +0.3 sd": (lognormal, lambda x: x + 0.3 * LOGNORMAL_SD),
        "Poisson(3) counts, unchanged": (poisson, lambda x: x),
        "Poisson(3) counts, +1": (poisson, lambda x: x + 1),
    }


BASE_MIX = np.array([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
ZIPF_50 = (1 / np.arange(1, 51)) / (1 / np.arange(1, 51)).sum()
ZIPF_150 = (1 / np.arange(1, 151)) / (1 / np.arange(1, 151)).sum()


def _categorical_scenarios() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    def moved(points: float) -> np.ndarray:
        p = np.append(BASE_MIX.copy(), 0.0)
        p[0] -= points
        p[1] += points
        return p

    new = np.append(BASE_MIX * 0.95, 0.05)
    base = np.append(BASE_MIX, 0.0)
    return {
        "unchanged (6 categories)": (base, base),
        "5 points moved between the top two": (base, moved(0.05)),
        "10 points moved": (base, moved(0.10)),
        "20 points moved": (base, moved(0.20)),
        "new category at 5%": (base, new),
        "unchanged (50 categories, Zipf)": (ZIPF_50, ZIPF_50),
        "unchanged (150 categories, Zipf)": (ZIPF_150, ZIPF_150),
    }


NUMERIC_RULES = {
    "KS p < 0.05": lambda s, n: s["ks_p_value"] < 0.05,
    "Wasserstein (normed) >= 0.1": lambda s, n: s["wasserstein"] >= 0.1,
    "PSI >= 0.1": lambda s, n: s["psi"] >= 0.1,
    "PSI >= 0.2": lambda s, n: s["psi"] >= 0.2,
    "Jensen-Shannon >= 0.1": lambda s, n: s["jensenshannon"] >= 0.1,
    "KS p < 0.05 up to 1,000 rows, then Wasserstein >= 0.1": lambda s, n: (
        s["ks_p_value"] < 0.05 if n <= 1000 else s["wasserstein"] >= 0.1
    ),
    "Wasserstein >= 0.1 and KS p < 0.05": lambda s, n: (s["wasserstein"] >= 0.1) & (s["ks_p_value"] < 0.05),
}
CATEGORICAL_RULES = {
    "chi-square p < 0.05": lambda s, n: s["chisquare_p_value"] < 0.05,
    "PSI >= 0.1": lambda s, n: s["psi"] >= 0.1,
    "PSI >= 0.2": lambda s, n: s["psi"] >= 0.2,
    "Jensen-Shannon >= 0.1": lambda s, n: s["jensenshannon"] >= 0.1,
    "Jensen-Shannon >= 0.05": lambda s, n: s["jensenshannon"] >= 0.05,
    "chi-square p < 0.05 up to 1,000 rows, then Jensen-Shannon >= 0.1": lambda s, n: (
        s["chisquare_p_value"] < 0.05 if n <= 1000 else s["jensenshannon"] >= 0.1
    ),
    "Jensen-Shannon >= 0.1 and chi-square p < 0.05": lambda s, n: (
        (s["jensenshannon"] >= 0.1) & (s["chisquare_p_value"] < 0.05)
    ),
    "PSI >= 0.1 and chi-square p < 0.05": lambda s, n: (s["psi"] >= 0.1) & (s["chisquare_p_value"] < 0.05),
    "Jensen-Shannon >= 0.05 and chi-square p < 0.05": lambda s, n: (
        (s["jensenshannon"] >= 0.05) & (s["chisquare_p_value"] < 0.05)
    ),
}


def run_study(seeds: int = STUDY_SEEDS, sizes: tuple[int, ...] = STUDY_SIZES) -> dict[str, Any]:
    """Detection (and false-positive) rates per rule, scenario and current size; reference of 10,000 rows."""
    from modelsteward.stats.drift import categorical_statistics, detect_drift, numeric_statistics
    from modelsteward.stats.sketch import reference_sketch, summarize

    def rates(profile: Any, current: pd.DataFrame, rules: dict[str, Any], compute: Any) -> dict[str, float]:
        sketch = summarize(current, profile)
        table = compute(profile.columns, [sketch.columns[c.name] for c in profile.columns])
        out = {name: float(np.mean(rule(table, len(current)))) for name, rule in rules.items()}
        out["default"] = float(np.mean([r.drifted for r in detect_drift(profile, sketch).rows]))
        return out

    results: dict[str, Any] = {"numeric": {}, "categorical": {}, "seeds": seeds, "reference_rows": STUDY_REFERENCE}
    columns = [f"s{i}" for i in range(seeds)]
    for index, (scenario, (draw, change)) in enumerate(_numeric_scenarios().items()):
        rng = np.random.default_rng([SEED, 1, index])
        profile = reference_sketch(pd.DataFrame(draw(rng, STUDY_REFERENCE, (STUDY_REFERENCE, seeds)), columns=columns))
        results["numeric"][scenario] = {
            n: rates(
                profile,
                pd.DataFrame(change(draw(rng, n, (n, seeds))), columns=columns),
                NUMERIC_RULES,
                numeric_statistics,
            )  # fmt: skip
            for n in sizes
        }
    for index, (scenario, (before, after)) in enumerate(_categorical_scenarios().items()):
        rng = np.random.default_rng([SEED, 2, index])
        labels = np.array([f"v{i}" for i in range(len(before))], dtype=object)

        def draw_mix(p: np.ndarray, n: int, rng: np.random.Generator = rng, labels: np.ndarray = labels) -> Any:
            return pd.DataFrame(labels[rng.choice(len(p), size=(n, seeds), p=p)], columns=columns, dtype="str")

        profile = reference_sketch(draw_mix(before, STUDY_REFERENCE))
        results["categorical"][scenario] = {
            n: rates(profile, draw_mix(after, n), CATEGORICAL_RULES, categorical_statistics) for n in sizes
        }
    return results


def render_study(study: dict[str, Any], elapsed: float) -> str:
    sizes = list(next(iter(study["numeric"].values())))
    head = "| scenario | " + " | ".join(f"{n:,}" for n in sizes) + " |"
    rule_line = "| --- | " + " | ".join("---:" for _ in sizes) + " |"
    lines: list[str] = []
    for kind, rules in (("numeric", NUMERIC_RULES), ("categorical", CATEGORICAL_RULES)):
        for rule in [*rules, "default"]:
            title = "Model Steward's default rule" if rule == "default" else rule
            lines += ["", f"**{kind}: {title}**", "", head, rule_line]
            for scenario, by_size in study[kind].items():
                cells = [_rate(by_size[n][rule]) for n in sizes]
                lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n({study['seeds']} seeds per cell; the run took {elapsed:.0f} s.)\n"


def _rate(rate: float) -> str:
    if rate == 0:
        return "0"
    return "<1%" if rate < 0.01 else "100%" if rate == 1 else f"{100 * rate:.0f}%"


# -- the driver -----------------------------------------------------------------------------------------------


class PeerUnavailable(RuntimeError):
    pass


def ensure_peer(venv: Path = PEER_DIR, rebuild: bool = False) -> Path:
    """Evidently's virtualenv: created on first use, reused while its requirements hold."""
    python = venv / "bin" / "python"
    stamp = venv / ".bench-requirements"
    wanted = "\n".join(PEER_REQUIREMENTS)
    if rebuild and venv.exists():
        shutil.rmtree(venv)
    if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    say(f"setting up the Evidently peer in {venv} ({' '.join(PEER_REQUIREMENTS)}); once only")
    for command in (
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *PEER_REQUIREMENTS],
        [str(python), "-c", "import evidently.presets"],
    ):
        if command[0] == sys.executable and python.exists():
            continue
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            raise PeerUnavailable(f"{' '.join(command[:4])} failed:\n{(done.stdout + done.stderr)[-2000:]}")
    stamp.write_text(wanted)
    return python


def run_side(python: Path | str, side: str, folder: Path, extra: list[str] | None = None) -> dict[str, Any]:
    """One side in a fresh process (its own peak memory); it prints one JSON line after RESULT_MARKER."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update({"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    if side != "evidently":
        env["PYTHONPATH"] = str(REPO)
    command = [str(python), str(Path(__file__).resolve()), "--side", side, "--data", str(folder), *(extra or [])]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise PeerUnavailable(f"side {side} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1].removeprefix(RESULT_MARKER))


def measure_size(rows: int, peer: Path | None, repeats: int, tmp: Path) -> dict[str, Any]:
    folder = tmp / f"rows-{rows}"
    say(f"{rows:,} rows: generating the workload")
    write_workload(folder, rows)
    profile_path = folder / "profile.json"
    say("  Model Steward: profile (once, at registration)")
    profile = run_side(sys.executable, "profile", folder, ["--profile-path", str(profile_path)])
    say(f"    {profile['seconds']:.2f} s, {profile['profile_bytes'] / 1024:.0f} KiB of JSON")
    say("  Model Steward: drift on current, profile precomputed")
    ours = run_side(sys.executable, "ours", folder, ["--profile-path", str(profile_path), "--repeats", str(repeats)])
    say(f"    {ours['seconds']:.2f} s, flags {ours['flagged']}")
    say("  scipy loop on the raw data")
    plain = run_side(sys.executable, "scipy", folder)
    say(f"    {plain['seconds']:.2f} s, flags {plain['flagged']}")
    evidently = None
    if peer is not None:
        say("  Evidently DataDriftPreset (Report.run + dict)")
        evidently = run_side(peer, "evidently", folder)
        say(f"    {evidently['seconds']:.2f} s, flags {evidently['flagged']}")
    shutil.rmtree(folder, ignore_errors=True)
    return {"rows": rows, "profile": profile, "ours": ours, "scipy": plain, "evidently": evidently}


def agreement(flagged: list[str] | None) -> str:
    if flagged is None:
        return "not run"
    expected = set(DRIFTED)
    missed, extra = sorted(expected - set(flagged)), sorted(set(flagged) - expected)
    if not missed and not extra:
        return f"all {len(expected)} drifted, no other"
    return "; ".join(part for part in (f"missed {missed}" if missed else "", f"also {extra}" if extra else "") if part)


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for size in result["sizes"]:
        ours, prof, plain, evi = size["ours"], size["profile"], size["scipy"], size["evidently"]
        n = f"{size['rows']:,} vs {size['rows']:,}"

        def mem(side: dict[str, Any]) -> str:
            return f"{side['peak_mb']:,.0f} MB (+{side['peak_mb'] - side['rss_base_mb']:,.0f})"

        best = f"{fmt_s(ours['seconds'])} (best {fmt_s(min(ours['runs']))})"
        rows.append([n, "Model Steward: drift, profile precomputed", best, mem(ours), "1x",
                     agreement(ours["flagged"])])  # fmt: skip
        rows.append([n, "Model Steward: build the profile (once)", fmt_s(prof["seconds"]), mem(prof),
                     f"({prof['profile_bytes'] / 1024:.0f} KiB JSON)", ""])  # fmt: skip
        rows.append([n, "scipy loop on the raw data", fmt_s(plain["seconds"]), mem(plain),
                     f"{plain['seconds'] / ours['seconds']:.0f}x slower", agreement(plain["flagged"])])  # fmt: skip
        if evi is not None:
            rows.append([n, "Evidently DataDriftPreset", fmt_s(evi["seconds"]), mem(evi),
                         f"**{evi['seconds'] / ours['seconds']:.0f}x slower**", agreement(evi["flagged"])])  # fmt: skip
        else:
            rows.append([n, "Evidently DataDriftPreset", "not run", "", "", ""])
    return rows


def render_section(result: dict[str, Any]) -> str:
    m = result["machine"]
    evi = next((s["evidently"] for s in result["sizes"] if s["evidently"]), None)
    evi_versions = evi["versions"] if evi else {}
    lines = [
        SECTION,
        "",
        f"Command: `{result['command']}` (run {result['date']}, {result['elapsed_s']:.0f} s in all).",
        "",
        f"Machine: {m['os']} {m['arch']}, {m['cpu']}, {m['cores']} cores. Python {m['python']}; ours: modelsteward "
        f"{m['modelsteward']}, NumPy {m['numpy']}, pandas {m['pandas']}, SciPy {m['scipy']}; Evidently "
        f"{evi_versions.get('evidently', 'not run')} with pandas {evi_versions.get('pandas', '-')} and NumPy "
        f"{evi_versions.get('numpy', '-')} in its own virtualenv. Load average when the run ended: "
        f"{', '.join(f'{x:.1f}' for x in m['load_average'])} (other work shared the machine; each figure is from "
        "this one run).",
        "",
        "| Rows (reference vs current) | Side | Wall time | Peak RSS (over loaded data) | vs ours | Columns flagged |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(result)]
    drifted = ", ".join(f"`{k}` ({v})" for k, v in DRIFTED.items())
    lines += [
        "",
        f"Workload: {NUMERIC} numeric columns (normal, scaled normal, lognormal, Poisson counts and uniform, in turn) "
        f"and {CATEGORICAL} text columns with {', '.join(map(str, CATEGORY_SIZES))} categories (Zipf shares), "
        f"reference and current of the same size, seed {SEED}; the current data drifts in {drifted}; every other "
        "column is a fresh sample of its reference distribution. *Columns flagged* compares each side's drifted "
        "columns with those five.",
        "",
        "- **Model Steward** (timed figure): `detect_drift(profile, current_frame)` in a process that has loaded only "
        "the profile (from its JSON, as a monitor reads it from the store) and the current frame: it summarises "
        "the current data on the profile's bins (one pass per column) and computes every statistic for every "
        "column (KS, Wasserstein, PSI, Jensen-Shannon; chi-square, PSI, Jensen-Shannon), deciding by the defaults "
        f"(see `docs/drift-defaults.md`); median of {result['repeats']} runs, the best in brackets. Building the "
        "profile (`reference_sketch(reference_frame)`) happens once, when a version is registered, in its own process.",
        "- **scipy loop**: per column, `ks_2samp` and `wasserstein_distance` (numeric) or `chi2_contingency` and "
        "`jensenshannon` on value counts (categorical) over the raw reference and current data, decided by the "
        "same rules as ours (normed Wasserstein >= 0.1 and KS p < 0.05; Jensen-Shannon >= 0.05 and chi-square "
        "p < 0.05) on the exact statistics.",
        "- **Evidently**: `Report([DataDriftPreset()]).run(current, reference)` and `snapshot.dict()`, with the "
        "column types given in a `DataDefinition`; no HTML. Its per-column methods are its defaults (normed "
        "Wasserstein >= 0.1 and Jensen-Shannon >= 0.1 above 1,000 reference rows).",
        "- Peak RSS is `ru_maxrss` of each side's process; in brackets, the growth over the process's size once its "
        "data was loaded (our drift process loads only the current frame and the profile). Text columns are "
        "pandas' Arrow-backed `str` on our side and object columns in Evidently's (pandas < 3).",
        "",
        f"Raw figures: `{result['json']}`.",
    ]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, section: str) -> None:
    """Replace our section of ``path`` (up to the next ``## `` heading), keeping every other section."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("" if end == -1 else "\n" + text[end + 1 :])
    path.write_text(text)


def machine() -> dict[str, Any]:
    import scipy

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "modelsteward": metadata.version("modelsteward"),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "load_average": list(os.getloadavg()),
    }


def write_study_doc(study: dict[str, Any], elapsed: float) -> None:
    text = STUDY_DOC.read_text() if STUDY_DOC.is_file() else ""
    marker = "<!-- study tables: generated by bench/bench_monitoring.py --study -->"
    intro = text[: text.index(marker)] if marker in text else "# Drift defaults\n\n"
    STUDY_DOC.write_text(intro + marker + "\n" + render_study(study, elapsed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Drift detection: Model Steward vs Evidently vs scipy.")
    parser.add_argument("--quick", action="store_true", help="100k rows only, no Markdown")
    parser.add_argument("--skip-peer", action="store_true", help="no Evidently (no virtualenv needed); no Markdown")
    parser.add_argument("--rebuild-peer", action="store_true", help="recreate Evidently's virtualenv first")
    parser.add_argument("--study", action="store_true", help="run the drift-defaults study and rewrite its doc")
    parser.add_argument("--seeds", type=int, default=STUDY_SEEDS, help="seeds per study cell")
    parser.add_argument("--json", type=Path, help="where the raw results go")
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.side:  # inside a side's own process
        sides = {
            "profile": lambda: side_profile(args.data, args.profile_path),
            "ours": lambda: side_ours(args.data, args.profile_path, args.repeats),
            "scipy": lambda: side_scipy(args.data),
            "evidently": lambda: side_evidently(args.data),
        }
        print(RESULT_MARKER + json.dumps(sides[args.side]()), flush=True)
        return 0
    started = time.perf_counter()
    if args.study:
        study = run_study(seeds=args.seeds)
        write_study_doc(study, time.perf_counter() - started)
        (RESULTS_DIR / "drift_study.json").write_text(json.dumps(study, indent=1) + "\n")
        say(f"wrote {STUDY_DOC} and {RESULTS_DIR / 'drift_study.json'}")
        return 0
    peer = None
    if not args.skip_peer:
        try:
            peer = ensure_peer(rebuild=args.rebuild_peer)
        except PeerUnavailable as e:
            say(f"error: {e}\nRun with --skip-peer to measure Model Steward alone.")
            return 2
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    complete = not args.quick and peer is not None
    tmp = Path(tempfile.mkdtemp(prefix="steward-bench-drift-"))
    try:
        measured = [measure_size(rows, peer, REPEATS, tmp) for rows in sizes]
    except PeerUnavailable as e:
        say(f"error: {e}")
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    command = ".venv/bin/python bench/bench_monitoring.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    json_path = (args.json or RESULTS_DIR / ("monitoring.json" if complete else "monitoring.scratch.json")).resolve()
    result = {
        "benchmark": "monitoring",
        "command": command,
        "date": dt.date.today().isoformat(),
        "elapsed_s": time.perf_counter() - started,
        "quick": args.quick,
        "repeats": REPEATS,
        "machine": machine(),
        "drifted": DRIFTED,
        "sizes": measured,
        "json": str(json_path.relative_to(REPO)) if json_path.is_relative_to(REPO) else str(json_path),
    }
    for row in table_rows(result):
        print(" | ".join(row))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    say(f"wrote {json_path}")
    if complete and not args.no_markdown:
        write_markdown(MARKDOWN, render_section(result))
        say(f"wrote the section {SECTION!r} of {MARKDOWN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
