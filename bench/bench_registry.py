"""Model Steward's registry against MLflow's on SQLite: same machine, same run, same work; into BENCHMARKS.md.

    .venv/bin/python bench/bench_registry.py            # full run: several minutes; writes BENCHMARKS.md
    .venv/bin/python bench/bench_registry.py --quick    # small sizes, well under a minute; writes no Markdown

Our side runs in this interpreter. MLflow runs in its own virtualenv (bench/.peers/mlflow, created on
first use and reused), through bench/peers/mlflow_registry.py, which prints its timings as JSON.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import datetime as dt
import json
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from workload import (
    ALIAS,
    FOREST_PARAMS,
    FULL,
    QUICK,
    RESULT_MARKER,
    TINY_PARAMS,
    Sizes,
    Workload,
    build_workload,
    summarize,
    time_calls,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PEER_DIR = BENCH_DIR / ".peers" / "mlflow"
PEER_STAMP_NAME = ".bench-requirements"  # the requirements the venv was installed with
PEER_SCRIPT = BENCH_DIR / "peers" / "mlflow_registry.py"
WORKLOAD_FILE = BENCH_DIR / "workload.py"
RESULTS_DIR = BENCH_DIR / "results"
PROFILES_DIR = RESULTS_DIR / "profiles"
MARKDOWN = REPO / "BENCHMARKS.md"
SECTION = "## Registry: Model Steward vs MLflow"
PEER_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONDONTWRITEBYTECODE": "1"}


class PeerUnavailable(RuntimeError):
    """The MLflow virtualenv could not be created or does not work."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the peer's virtualenv --------------------------------------------------------------------------


def peer_requirements() -> list[str]:
    """MLflow 3.x with the same scikit-learn and skops as ours, so both sides fit and save the same model."""
    try:
        ours = {name: metadata.version(name) for name in ("scikit-learn", "skops")}
    except metadata.PackageNotFoundError as e:
        raise SystemExit(
            f"{e.name} is not installed here; install the project with its extras: pip install -e '.[all,test]'"
        ) from e
    return ["mlflow>=3,<4", f"scikit-learn=={ours['scikit-learn']}", f"skops=={ours['skops']}", "pandas"]


def peer_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run_step(command: list[str], what: str, timeout: float) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PeerUnavailable(f"{what} failed: {e}") from e
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise PeerUnavailable(f"{what} failed (exit {done.returncode}):\n{tail}")


def ensure_peer(venv: Path = PEER_DIR, rebuild: bool = False) -> Path:
    """The MLflow venv's python: created and installed on first use, reused while its requirements hold."""
    requirements = peer_requirements()
    python = peer_python(venv)
    stamp = venv / PEER_STAMP_NAME
    wanted = "\n".join(requirements)
    if rebuild and venv.exists():
        shutil.rmtree(venv)
    if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    say(f"setting up the MLflow peer in {_show(venv)} ({' '.join(requirements)}); once only")
    if not python.exists():
        _run_step([sys.executable, "-m", "venv", str(venv)], f"python -m venv {venv}", timeout=300)
    _run_step(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", *requirements],
        f"pip install {' '.join(requirements)} into {venv}",
        timeout=1800,
    )
    _run_step([str(python), "-c", "import mlflow.sklearn, sklearn, skops.io"], "importing mlflow in the peer", 300)
    stamp.write_text(wanted)
    return python


def _show(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def run_peer(python: Path, sizes: Sizes) -> dict[str, Any]:
    """Run the MLflow side from a fresh temporary folder outside any git repository."""
    workdir = Path(tempfile.mkdtemp(prefix="steward-bench-mlflow-"))
    try:
        for source in (PEER_SCRIPT, WORKLOAD_FILE):
            shutil.copy(source, workdir / source.name)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.update(PEER_ENV)
        command = [
            str(python),
            str(workdir / PEER_SCRIPT.name),
            "--sizes",
            json.dumps(sizes.to_dict()),
            "--workdir",
            str(workdir / "stores"),
        ]
        proc = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        tail: deque[str] = deque(maxlen=30)

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                tail.append(line.rstrip())
                if line.startswith("[mlflow]"):
                    say("  " + line.rstrip())

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        code = proc.wait()
        reader.join(timeout=5)
        results = [line for line in stdout.splitlines() if line.startswith(RESULT_MARKER)]
        if code != 0 or not results:
            raise PeerUnavailable(f"the MLflow peer failed (exit {code}); its last output:\n" + "\n".join(tail))
        return json.loads(results[-1].removeprefix(RESULT_MARKER))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- our side -----------------------------------------------------------------------------------------


def inside_git(folder: Path) -> bool:
    return any((p / ".git").exists() for p in (folder, *folder.parents))


@contextlib.contextmanager
def working_directory(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


Phase = Callable[[str], contextlib.AbstractContextManager[Any]]


def run_ours(sizes: Sizes, wl: Workload, phase: Phase = lambda name: contextlib.nullcontext()) -> dict[str, Any]:
    """The same work as the peer, in this process, from a fresh temporary folder outside any git repo.

    ``phase(name)`` wraps each timed phase (the profiler uses it).
    """
    from modelsteward import Steward
    from modelsteward.catalog.registration import prepare_registration

    workdir = Path(tempfile.mkdtemp(prefix="steward-bench-ours-"))
    if inside_git(workdir):
        say(f"warning: {workdir} is inside a git repository: our side will record git information")
    ops: dict[str, Any] = {}
    facts: dict[str, Any] = {"forest_auc": wl.forest_auc}
    try:
        with working_directory(workdir), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the peer silences MLflow's warnings too
            st = Steward(data_dir=workdir / "register")
            last: dict[str, Any] = {}

            def register(name: str, model: Any, auc: float, params: dict[str, Any]) -> None:
                last["v"] = st.register_model(
                    name, model, kind="sklearn", input_example=wl.example, metrics={"auc": auc}, params=params
                )

            say(f"  [ours] register forest x{sizes.register_reps} (+{sizes.warmup} warm-up)")
            with phase("register_forest"):
                samples = time_calls(
                    lambda i: register("forest", wl.forest, wl.forest_auc, FOREST_PARAMS),
                    sizes.register_reps,
                    warmup=sizes.warmup,
                )
            ops["register_forest"] = summarize(samples)
            facts["git_recorded"] = last["v"].source is not None
            facts["forest_artifact_bytes"] = last["v"].artifact.size
            facts["forest_versions"] = last["v"].version
            facts["captured_packages"] = last["v"].requirements.packages

            say(f"  [ours] register tiny x{sizes.register_reps} (+{sizes.warmup} warm-up)")
            with phase("register_tiny"):
                samples = time_calls(
                    lambda i: register("tiny", wl.tiny, wl.tiny_auc, TINY_PARAMS),
                    sizes.register_reps,
                    warmup=sizes.warmup,
                )
            ops["register_tiny"] = summarize(samples)

            st.set_alias("forest", ALIAS, 1)
            assert st.get_version(f"forest@{ALIAS}").version == 1
            say(f"  [ours] resolve forest@{ALIAS} x{sizes.resolve_calls}")
            with phase("resolve_alias"):
                samples = time_calls(lambda i: st.get_version(f"forest@{ALIAS}"), sizes.resolve_calls, warmup=20)
            ops["resolve_alias"] = summarize(samples)

            say(f"  [ours] move forest@{ALIAS} x{sizes.alias_moves}")
            with phase("move_alias"):
                samples = time_calls(
                    lambda i: st.set_alias("forest", ALIAS, 2 if i % 2 == 0 else 1),
                    sizes.alias_moves,
                    warmup=10,
                )
            ops["move_alias"] = summarize(samples)
            st.close()

            # MLflow keeps SQLite's defaults (rollback journal, synchronous=FULL: every commit is fsynced);
            # ours runs WAL with synchronous=NORMAL. The same alias moves with MLflow's settings show how
            # much of the gap is durability.
            st = Steward(data_dir=workdir / "durable")
            _like_mlflow_sqlite(st)
            register("forest", wl.tiny, wl.tiny_auc, TINY_PARAMS)
            register("forest", wl.tiny, wl.tiny_auc, TINY_PARAMS)
            say(f"  [ours] move forest@{ALIAS} x{sizes.alias_moves}, SQLite as MLflow sets it up")
            with phase("move_alias_fsync"):
                samples = time_calls(
                    lambda i: st.set_alias("forest", ALIAS, 2 if i % 2 == 0 else 1),
                    sizes.alias_moves,
                    warmup=10,
                )
            ops["move_alias_fsync"] = summarize(samples)
            st.close()

            # The catalog: a fresh store; every version records one tiny model prepared beforehand
            # (the counterpart of MLflow's create_model_version on a pre-logged artifact).
            st = Steward(data_dir=workdir / "catalog")
            prepared = prepare_registration(
                "cat-000",
                wl.tiny,
                kind="sklearn",
                input_example=wl.example,
                metrics={"auc": wl.tiny_auc},
                params=TINY_PARAMS,
            )
            say(f"  [ours] populate {sizes.catalog_models} models x {sizes.catalog_versions} versions")
            samples = []
            with phase("populate_version"):
                for m in range(sizes.catalog_models):
                    registration = dataclasses.replace(prepared, name=f"cat-{m:03d}")
                    for _ in range(sizes.catalog_versions):
                        start = time.perf_counter()
                        st.register_prepared(registration)
                        samples.append(time.perf_counter() - start)
            ops["populate_version"] = summarize(samples)

            counts = {"versions": len(st.list_versions()), "models": len(st.list_models())}
            if counts != {"versions": sizes.catalog_size, "models": sizes.catalog_models}:
                raise SystemExit(f"Model Steward listed {counts}, expected {sizes.catalog_size} versions")
            say(f"  [ours] list {sizes.catalog_size} versions and {sizes.catalog_models} models x{sizes.list_reps}")
            with phase("list_versions"):
                ops["list_versions"] = summarize(time_calls(lambda i: st.list_versions(), sizes.list_reps, warmup=1))
            with phase("list_models"):
                ops["list_models"] = summarize(time_calls(lambda i: st.list_models(), sizes.list_reps, warmup=1))
            facts["listed_versions"] = counts["versions"]
            facts["listed_models"] = counts["models"]
            st.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "side": "modelsteward",
        "versions": {
            "python": platform.python_version(),
            "modelsteward": metadata.version("modelsteward"),
            "scikit-learn": metadata.version("scikit-learn"),
            "skops": metadata.version("skops"),
            "pandas": metadata.version("pandas"),
            "sqlalchemy": metadata.version("sqlalchemy"),
            "pydantic": metadata.version("pydantic"),
        },
        "ops": ops,
        "facts": facts,
    }


def _like_mlflow_sqlite(st: Any) -> None:
    """Open the store's SQLite connections as MLflow does: rollback journal, fsync on every commit."""
    import sqlalchemy as sa

    engine = st.db.engine
    engine.dispose()

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:  # runs after our own set-up
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=DELETE")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    with engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    if mode != "delete":
        raise SystemExit(f"could not switch our SQLite store to MLflow's journal mode (got {mode!r})")


def profile_ours(sizes: Sizes, wl: Workload, top: int = 12) -> dict[str, list[str]]:
    """Run our side again under cProfile, phase by phase; print and return our code's hot spots."""
    PROFILES_DIR.mkdir(parents=True, exist_ok=True)
    profiles: dict[str, cProfile.Profile] = {}

    @contextlib.contextmanager
    def phase(name: str) -> Iterator[None]:
        profiler = profiles.setdefault(name, cProfile.Profile())
        profiler.enable()
        try:
            yield
        finally:
            profiler.disable()

    say("profiling our side (timings of this pass are not reported)")
    run_ours(sizes, wl, phase)
    report: dict[str, list[str]] = {}
    for name, profiler in profiles.items():
        path = PROFILES_DIR / f"registry-{name}.prof"
        profiler.dump_stats(path)
        stats = pstats.Stats(profiler)
        total = stats.total_tt  # type: ignore[attr-defined]
        ours_, everyone = [], []
        for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if func == "<built-in method gc.collect>":
                total -= tottime  # the benchmark's own collection before each phase, not our code's
                continue
            entry = (cumtime, tottime, ncalls, f"{_short(filename)}:{line} {func}")
            everyone.append(entry)
            if "/modelsteward/" in filename:
                ours_.append(entry)
        ours_.sort(reverse=True)
        everyone.sort(key=lambda e: e[1], reverse=True)
        lines = [_profile_line(e, total) for e in ours_[:top]]
        lines += ["-- own time, any code:"] + [_profile_line(e, total) for e in everyone[: top // 2]]
        report[name] = lines
        print(f"\n{name}: {total:.2f} s profiled, {path.relative_to(REPO)}; our code by cumulative time:")
        print("\n".join("  " + line for line in lines))
    return report


def _profile_line(entry: tuple[float, float, int, str], total: float) -> str:
    cum, own, calls, where = entry
    return f"{cum / total:6.1%} cum {own / total:6.1%} own {calls:>7} calls  {where}"


def _short(filename: str) -> str:
    if "/modelsteward/" in filename:
        return "modelsteward/" + filename.split("/modelsteward/", 1)[1]
    return re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", filename)


def code_state() -> dict[str, Any]:
    """Which modelsteward code was measured: the commit, uncommitted changes, and a digest of the sources."""
    import hashlib

    import modelsteward

    package = Path(modelsteward.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    state: dict[str, Any] = {"source_sha256": digest.hexdigest()[:16], "commit": None, "dirty": None}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "--no-optional-locks", *args], cwd=package, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    state["commit"] = git("rev-parse", "--short=12", "HEAD")
    status = git("status", "--porcelain", "--", ".")
    state["dirty"] = None if status is None else bool(status)
    return state


# -- the report ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    label: str
    ours: str  # the key of our measurement
    peer: str  # the key of MLflow's


ROWS = [
    Row("Register a version: random forest, 100 trees ({forest_mb} MB)", "register_forest", "register_forest"),
    Row("Register a version: tiny logistic regression", "register_tiny", "register_tiny"),
    Row(
        "Register a random forest, MLflow inferring requirements",
        "register_forest",
        "register_forest_inferred",
    ),
    Row("Resolve `name@production`", "resolve_alias", "resolve_alias"),
    Row("Move an alias", "move_alias", "move_alias"),
    Row(
        "Move an alias, ours with MLflow's SQLite durability (fsync per commit)",
        "move_alias_fsync",
        "move_alias",
    ),
    Row("Record a version of an already-saved model (catalog fill)", "populate_version", "populate_version"),
    Row("List every version of the catalog", "list_versions", "list_versions"),
    Row("List every model of the catalog", "list_models", "list_models"),
]


def fmt_ms(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{ratio:.2f}x (MLflow {1 / ratio:.1f}x faster)"


def table_rows(ours: dict[str, Any], peer: dict[str, Any] | None, sizes: Sizes) -> list[dict[str, Any]]:
    rows = []
    for row in ROWS:
        label = row.label.format(forest_mb=f"{ours['facts']['forest_artifact_bytes'] / 1e6:.1f}")
        if row.ours.startswith("list_"):
            what = "versions" if row.ours == "list_versions" else "models"
            count = sizes.catalog_size if what == "versions" else sizes.catalog_models
            label = f"{label} ({count:,} {what})"
        mine = ours["ops"][row.ours]
        theirs = peer["ops"][row.peer] if peer else None
        ratio = theirs["median_ms"] / mine["median_ms"] if theirs else None
        rows.append({"operation": label, "ours": mine, "mlflow": theirs, "ratio": ratio, "key": row.peer})
    return rows


def _cell(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "not run"
    return f"{fmt_ms(stats['median_ms'])} (p90 {fmt_ms(stats['p90_ms'])}, n={stats['n']})"


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Registry: Model Steward vs MLflow (median, p90, samples)")
    table.add_column("Operation")
    table.add_column("Model Steward", justify="right")
    table.add_column("MLflow", justify="right")
    table.add_column("MLflow / ours", justify="right")
    for row in rows:
        table.add_row(row["operation"], _cell(row["ours"]), _cell(row["mlflow"]), fmt_ratio(row["ratio"]))
    Console(width=160).print(table)


def machine() -> dict[str, Any]:
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
    }


def render_section(result: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    ours, peer, sizes = result["ours"], result["mlflow"], Sizes(**result["sizes"])
    m = result["machine"]
    mlflow_version = peer["versions"]["mlflow"] if peer else "not run"
    lines = [
        SECTION,
        "",
        f"Command: `{result['command']}` (run {result['date']}, {result['elapsed_s']:.0f} s in all).",
        "",
        f"Machine: {m['os']} {m['arch']}, {m['cpu']}, {m['cores']} cores. "
        f"Python {ours['versions']['python']}, "
        f"modelsteward {ours['versions']['modelsteward']} ({_code_text(result['code'])}), "
        f"MLflow {mlflow_version} (in its own virtualenv), "
        f"scikit-learn {ours['versions']['scikit-learn']} and skops {ours['versions']['skops']} "
        "on both sides, "
        "SQLite on local disk for both.",
        "",
        "| Operation | Model Steward median (p90) | MLflow median (p90) | MLflow / ours |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        mine, theirs = row["ours"], row["mlflow"]
        peer_cell = f"{fmt_ms(theirs['median_ms'])} ({fmt_ms(theirs['p90_ms'])})" if theirs else "not run"
        lines.append(
            f"| {row['operation']} | {fmt_ms(mine['median_ms'])} ({fmt_ms(mine['p90_ms'])}) | {peer_cell} "
            f"| **{fmt_ratio(row['ratio'])}** |"
        )
    explicit = ", ".join(f"`{r}`" for r in peer["explicit_requirements"]) if peer else "(not run)"
    lines += [
        "",
        "Each figure is per call, in the same run, one side after the other (ours first). Registrations: "
        f"{sizes.register_reps} timed after {sizes.warmup} warm-up per model, MLflow inferring requirements "
        f"{sizes.inferred_reps}; {sizes.resolve_calls:,} alias resolutions; "
        f"{sizes.alias_moves:,} alias moves, "
        f"alternating between versions 1 and 2; listings {sizes.list_reps} times over a catalog of "
        f"{sizes.catalog_models} models x {sizes.catalog_versions} versions. Python's garbage collector "
        "stays on, as in real use, on both sides; each timed phase starts after a `gc.collect()`.",
        "",
        "What each side does:",
        "",
        "- **Same inputs.** Both sides build the same data (`make_classification`, 5,000 x 20, seed 0) "
        "and fit "
        f"the same estimators (`RandomForestClassifier({_kwargs(FOREST_PARAMS)})`, "
        f"`LogisticRegression({_kwargs(TINY_PARAMS)})`) with the same scikit-learn; "
        "both save them with skops; "
        "both run from a fresh temporary folder outside any git repository, so neither records git "
        "information (checked), and both use a fresh SQLite database.",
        '- **Register, Model Steward:** `st.register_model(name, model, kind="sklearn", '
        'input_example=X.head(), metrics={"auc": ...}, params={...})`: serializes with skops (reading it '
        "back only when the model holds types from outside scikit-learn/NumPy/SciPy), infers the "
        "signature and runs the model on the example, captures Python, platform and "
        "package versions itself, writes the content-addressed artifact, the version row and a "
        "hash-chained audit event in one transaction.",
        '- **Register, MLflow:** inside `mlflow.start_run()`: `log_params`, `log_metric("auc")`, '
        "`infer_signature(X.head(), model.predict(X.head()))`, then `mlflow.sklearn.log_model(model, "
        "name=..., registered_model_name=..., signature=..., input_example=X.head(), "
        f"pip_requirements=[...], skops_trusted_types=[...])` with explicit requirements {explicit}: "
        "the fast way to use MLflow. The *inferring* row leaves `pip_requirements` out, so MLflow loads "
        "the model in a subprocess to find its imports; Model Steward has no such mode (its figure there "
        "is the same registration as the first row).",
        '- **Resolve:** `st.get_version("forest@production")` (returns the full version record: '
        "signature, metrics, params, requirements, data sets, aliases; one statement reads the version id "
        "and its current aliases, the immutable rest of the record comes from an in-process cache keyed by "
        "the version's id) vs "
        '`MlflowClient().get_model_version_by_alias("forest", "production")`.',
        '- **Move an alias:** `st.set_alias(name, "production", v)` (compare-and-set capable, with an '
        'audit event) vs `client.set_registered_model_alias(name, "production", v)`.',
        "- **SQLite durability differs**, each tool keeping its own set-up: Model Steward opens SQLite in "
        "WAL mode with `synchronous=NORMAL` (a commit survives a crash of the process, not necessarily a "
        "power cut), MLflow keeps SQLite's defaults (rollback journal, `synchronous=FULL`: fsync on every "
        "commit). Writes gain most from this, so the *MLflow's SQLite durability* row repeats our alias "
        "moves on a store opened MLflow's way (`journal_mode=DELETE`, `synchronous=FULL`).",
        "- **Catalog fill:** ours `st.register_prepared(...)` of one tiny model prepared once with "
        "`prepare_registration` (model row created on the first version) vs MLflow "
        "`client.create_model_version(name, source=<a logged model's artifacts>, run_id=None)` "
        "(`create_registered_model` beforehand, not timed). Only the listings below are the point; "
        "this row is for information.",
        "- **List versions:** `st.list_versions()` (every version, as `VersionSummary` records: "
        "kind, artifact hash, metrics, tags, aliases and data-set links; `get_version` gives the full "
        "record) vs `client.search_model_versions(max_results=10_000, page_token=...)`, paging "
        "until the token runs out (10,000 is the client's default page; MLflow's search results may leave "
        "aliases empty).",
        "- **List models:** `st.list_models()` vs `client.search_registered_models(max_results=1000, ...)`, "
        "paging (1,000 is MLflow's maximum page).",
        "",
        f"Raw figures: `{result['json']}`.",
    ]
    return "\n".join(lines) + "\n"


def _code_text(code: dict[str, Any]) -> str:
    text = f"commit {code['commit'] or 'unknown'}"
    if code["dirty"]:
        text += " with uncommitted changes"
    text += f", sources sha256 {code['source_sha256']}"
    if code.get("changed_during_run"):
        text += ", **changed during the run**"
    return text


def _kwargs(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def write_markdown(path: Path, section: str, result: dict[str, Any]) -> None:
    """Replace our section of ``path`` (up to the next ``## `` heading), creating the file if needed."""
    if path.is_file():
        text = path.read_text()
    else:
        m, ours = result["machine"], result["ours"]
        mlflow_version = result["mlflow"]["versions"]["mlflow"] if result["mlflow"] else "n/a"
        text = (
            "# Benchmarks\n\n"
            "Model Steward measured side by side with the tools it replaces, "
            "on the same machine in the same run. "
            "Every figure in a section comes from one run of the command shown in that section; "
            "`bench/README.md` says how to run them.\n\n"
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['os']} ({result['date']}); "
            f"Python {ours['versions']['python']}, modelsteward {ours['versions']['modelsteward']}, "
            f"MLflow {mlflow_version}.\n"
        )
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        rest = "" if end == -1 else "\n" + text[end + 1 :]
        text = text[:start] + section + rest
    path.write_text(text)


# -- main ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Model Steward's registry vs MLflow's, on SQLite.")
    parser.add_argument("--quick", action="store_true", help="small sizes (well under a minute); no Markdown")
    parser.add_argument("--skip-peer", action="store_true", help="measure Model Steward only (no MLflow venv)")
    parser.add_argument(
        "--peer-dir", type=Path, default=PEER_DIR, help="the MLflow virtualenv (default bench/.peers/mlflow)"
    )
    parser.add_argument("--rebuild-peer", action="store_true", help="recreate the MLflow virtualenv first")
    parser.add_argument("--profile", action="store_true", help="then profile our side and print hot spots")
    parser.add_argument(
        "--json",
        type=Path,
        help="raw results (default bench/results/registry.json, or registry.scratch.json for --quick/--skip-peer runs)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        help="update this file's section (default BENCHMARKS.md on full runs with the peer; not written otherwise)",
    )
    parser.add_argument("--no-markdown", action="store_true", help="never write Markdown")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    complete = not args.quick and not args.skip_peer
    started = time.perf_counter()

    python = None
    if not args.skip_peer:
        try:
            python = ensure_peer(args.peer_dir.resolve(), rebuild=args.rebuild_peer)
        except PeerUnavailable as e:
            say(
                f"error: cannot set up the MLflow peer virtualenv ({_show(args.peer_dir)}).\n{e}\n\n"
                "It needs PyPI (pip install mlflow). Run with --skip-peer to measure Model Steward alone, "
                "or --rebuild-peer to start the virtualenv afresh."
            )
            return 2

    code = code_state()
    say("building the workload (same data and estimators on both sides)")
    wl = build_workload()
    say("Model Steward (this interpreter):")
    ours = run_ours(sizes, wl)
    peer = None
    if python is not None:
        say(f"MLflow ({_show(python)}):")
        try:
            peer = run_peer(python, sizes)
        except PeerUnavailable as e:
            say(f"error: {e}\nRun with --skip-peer to measure Model Steward alone.")
            return 2
        _check_same_work(ours, peer)
    code_after = code_state()
    code["changed_during_run"] = code_after["source_sha256"] != code["source_sha256"]
    if code["changed_during_run"]:
        say("warning: modelsteward's source files changed during the run; our figures may mix two versions")

    command = ".venv/bin/python bench/bench_registry.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    result = {
        "benchmark": "registry",
        "command": command,
        "date": dt.date.today().isoformat(),
        "elapsed_s": time.perf_counter() - started,
        "quick": args.quick,
        "machine": machine(),
        "sizes": sizes.to_dict(),
        "code": code,
        "ours": ours,
        "mlflow": peer,
    }
    rows = table_rows(ours, peer, sizes)
    result["table"] = [
        {
            "operation": r["operation"],
            "mlflow_op": r["key"],
            "ours_median_ms": r["ours"]["median_ms"],
            "mlflow_median_ms": r["mlflow"]["median_ms"] if r["mlflow"] else None,
            "ratio_mlflow_over_ours": r["ratio"],
        }
        for r in rows
    ]
    print_table(rows)

    json_path = (args.json or RESULTS_DIR / ("registry.json" if complete else "registry.scratch.json")).resolve()
    result["json"] = _show(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    say(f"wrote {json_path}")
    markdown = None if args.no_markdown else (args.markdown or (MARKDOWN if complete else None))
    if markdown is not None:
        write_markdown(markdown, render_section(result, rows), result)
        say(f"wrote the section {SECTION!r} of {markdown}")
    if args.profile:
        profile_ours(sizes, wl)
    return 0


def _check_same_work(ours: dict[str, Any], peer: dict[str, Any]) -> None:
    """Refuse to report figures that were not measured on equal terms."""
    problems = []
    if ours["facts"]["git_recorded"] or peer["facts"]["git_recorded"]:
        problems.append("a side recorded git information")
    if abs(ours["facts"]["forest_auc"] - peer["facts"]["forest_auc"]) > 1e-12:
        problems.append("the two sides fitted different forests")
    for key in ("listed_versions", "listed_models"):
        if ours["facts"][key] != peer["facts"][key]:
            problems.append(f"{key}: {ours['facts'][key]} vs {peer['facts'][key]}")
    if problems:
        raise SystemExit("the two sides did not do the same work: " + "; ".join(problems))


if __name__ == "__main__":
    sys.exit(main())
