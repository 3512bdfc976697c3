"""The registry benchmark's shared workload: data, estimators, sizes and statistics, identical on both sides.

Both the driver (our side, in the project's virtualenv) and the MLflow peer (in its own virtualenv)
import this file, so it may depend only on NumPy, pandas and scikit-learn.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULT_MARKER = "BENCH-RESULT "
ALIAS = "production"
SEED = 0


@dataclass(frozen=True)
class Sizes:
    """How much work each phase does; the driver sends these to the peer so both sides match."""

    warmup: int  # untimed registrations (and calls) first, so imports and caches are paid for
    register_reps: int  # timed registrations of the forest, and of the tiny model
    inferred_reps: int  # timed MLflow registrations that infer requirements (seconds each)
    resolve_calls: int
    alias_moves: int
    catalog_models: int
    catalog_versions: int  # per model: the catalog holds models x versions versions
    list_reps: int

    @property
    def catalog_size(self) -> int:
        return self.catalog_models * self.catalog_versions

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


FULL = Sizes(
    warmup=3,
    register_reps=30,
    inferred_reps=3,
    resolve_calls=2000,
    alias_moves=1000,
    catalog_models=100,
    catalog_versions=100,
    list_reps=5,
)
QUICK = Sizes(
    warmup=1,
    register_reps=5,
    inferred_reps=1,
    resolve_calls=200,
    alias_moves=100,
    catalog_models=10,
    catalog_versions=20,
    list_reps=3,
)

FOREST_PARAMS = {"n_estimators": 100, "max_depth": 8, "random_state": SEED}
TINY_PARAMS = {"C": 1.0, "max_iter": 200}
N_ROWS = 5000
N_FEATURES = 20


@dataclass
class Workload:
    """The data and the two fitted estimators both sides register."""

    X: Any  # pandas DataFrame, N_ROWS x N_FEATURES
    forest: Any
    forest_auc: float
    tiny: Any
    tiny_auc: float

    @property
    def example(self) -> Any:
        return self.X.head()


def build_workload() -> Workload:
    """Deterministic data and models (same seed, same scikit-learn version on both sides)."""
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    X_all, y_all = make_classification(
        n_samples=N_ROWS + 1000, n_features=N_FEATURES, n_informative=8, random_state=SEED
    )
    columns = [f"f{i:02d}" for i in range(N_FEATURES)]
    X = pd.DataFrame(X_all[:N_ROWS], columns=columns)
    X_test = pd.DataFrame(X_all[N_ROWS:], columns=columns)
    y, y_test = y_all[:N_ROWS], y_all[N_ROWS:]
    forest = RandomForestClassifier(**FOREST_PARAMS).fit(X, y)
    tiny = LogisticRegression(**TINY_PARAMS).fit(X, y)
    return Workload(
        X=X,
        forest=forest,
        forest_auc=float(roc_auc_score(y_test, forest.predict_proba(X_test)[:, 1])),
        tiny=tiny,
        tiny_auc=float(roc_auc_score(y_test, tiny.predict_proba(X_test)[:, 1])),
    )


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted, non-empty list."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(samples_s: list[float], **extra: Any) -> dict[str, Any]:
    """Milliseconds: median, p90, mean, min, max over the timed samples (given in seconds)."""
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "n": len(ms),
        "median_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "mean_ms": sum(ms) / len(ms),
        "min_ms": ms[0],
        "max_ms": ms[-1],
        **extra,
    }


def time_calls(fn: Callable[[int], object], n: int, warmup: int = 0) -> list[float]:
    """Call ``fn(i)`` ``warmup`` times untimed, then ``n`` times, timing each call (seconds)."""
    for i in range(warmup):
        fn(i)
    gc.collect()  # start each phase from a clean heap on both sides; collections during it still count
    samples: list[float] = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process of the process group ``pgid`` (a server and its workers)."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # pgrp
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def replace_section(markdown: Path, section: str, text: str) -> None:
    """Put ``text`` (which starts with the ``section`` heading) in place of that section of BENCHMARKS.md, or at
    its end when the section is new."""
    current = markdown.read_text() if markdown.exists() else "# Benchmarks\n"
    start = current.find(section)
    if start == -1:
        markdown.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = current.find("\n## ", start + len(section))
    markdown.write_text(current[:start] + text + ("\n" + current[end + 1 :] if end != -1 else ""))
