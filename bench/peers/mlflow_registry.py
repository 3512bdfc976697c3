"""MLflow's side of the registry benchmark: run by bench_registry.py with the peer virtualenv's python.

It is copied, with workload.py, into a temporary folder outside any git repository and run from there,
so that MLflow (which looks for git around ``sys.argv[0]``) records no git information, like our side.
Prints progress on stderr and one ``BENCH-RESULT {json}`` line on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow  # noqa: E402 - telemetry must be off before MLflow is imported
import mlflow.sklearn  # noqa: E402
import skops.io as sio  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from workload import (  # noqa: E402
    ALIAS,
    FOREST_PARAMS,
    RESULT_MARKER,
    TINY_PARAMS,
    Sizes,
    build_workload,
    summarize,
    time_calls,
)


def log(message: str) -> None:
    print(f"[mlflow] {message}", file=sys.stderr, flush=True)


def use_store(folder: Path) -> MlflowClient:
    """A fresh SQLite tracking + registry store in ``folder``, artifacts beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("bench", artifact_location=(folder / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def explicit_requirements() -> list[str]:
    """What a careful user writes by hand: the packages the model needs, pinned."""
    names = ["mlflow", "scikit-learn", "numpy", "scipy", "skops", "pandas"]
    return [f"{n}=={metadata.version(n)}" for n in names]


def folder_bytes(uri: str) -> int:
    path = Path(uri.removeprefix("file://"))
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    wl = build_workload()
    ops: dict[str, Any] = {}
    facts: dict[str, Any] = {"forest_auc": wl.forest_auc}
    requirements = explicit_requirements()
    # Computed once outside the timings: a user who keeps skops (MLflow's default format) passes these.
    trusted = {
        "forest": sio.get_untrusted_types(data=sio.dumps(wl.forest)),
        "tiny": sio.get_untrusted_types(data=sio.dumps(wl.tiny)),
    }

    client = use_store(workdir / "register")
    last: dict[str, Any] = {}

    def register(name: str, model: Any, auc: float, params: dict[str, Any], pip: list[str] | None) -> None:
        with mlflow.start_run() as active:
            mlflow.log_params(params)
            mlflow.log_metric("auc", auc)
            example = wl.example
            signature = infer_signature(example, model.predict(example))
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=name,
                signature=signature,
                input_example=example,
                pip_requirements=pip,
                skops_trusted_types=trusted["forest" if model is wl.forest else "tiny"],
            )
        last.update(run_id=active.info.run_id, info=info)

    log(f"register forest x{sizes.register_reps} (+{sizes.warmup} warm-up), explicit requirements")
    samples = time_calls(
        lambda i: register("forest", wl.forest, wl.forest_auc, FOREST_PARAMS, requirements),
        sizes.register_reps,
        warmup=sizes.warmup,
    )
    ops["register_forest"] = summarize(samples)
    tags = client.get_run(last["run_id"]).data.tags
    facts["git_recorded"] = "mlflow.source.git.commit" in tags
    facts["forest_artifact_bytes"] = folder_bytes(mlflow.get_logged_model(last["info"].model_id).artifact_location)
    facts["forest_versions"] = int(last["info"].registered_model_version)

    log(f"register tiny x{sizes.register_reps} (+{sizes.warmup} warm-up), explicit requirements")
    samples = time_calls(
        lambda i: register("tiny", wl.tiny, wl.tiny_auc, TINY_PARAMS, requirements),
        sizes.register_reps,
        warmup=sizes.warmup,
    )
    ops["register_tiny"] = summarize(samples)

    log(f"register forest x{sizes.inferred_reps}, MLflow infers requirements (seconds each)")
    samples = time_calls(
        lambda i: register("forest-inferred", wl.forest, wl.forest_auc, FOREST_PARAMS, None),
        sizes.inferred_reps,
    )
    ops["register_forest_inferred"] = summarize(samples)

    client.set_registered_model_alias("forest", ALIAS, 1)
    assert client.get_model_version_by_alias("forest", ALIAS).version in (1, "1")
    log(f"resolve forest@{ALIAS} x{sizes.resolve_calls}")
    samples = time_calls(lambda i: client.get_model_version_by_alias("forest", ALIAS), sizes.resolve_calls, warmup=20)
    ops["resolve_alias"] = summarize(samples)

    log(f"move forest@{ALIAS} x{sizes.alias_moves}")
    samples = time_calls(
        lambda i: client.set_registered_model_alias("forest", ALIAS, 2 if i % 2 == 0 else 1),
        sizes.alias_moves,
        warmup=10,
    )
    ops["move_alias"] = summarize(samples)

    # The catalog: a fresh store, every version pointing at one tiny model logged beforehand.
    client = use_store(workdir / "catalog")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            wl.tiny, name="tiny", pip_requirements=requirements, skops_trusted_types=trusted["tiny"]
        )
    source = mlflow.get_logged_model(info.model_id).artifact_location
    log(f"populate {sizes.catalog_models} models x {sizes.catalog_versions} versions")
    samples = []
    for m in range(sizes.catalog_models):
        name = f"cat-{m:03d}"
        client.create_registered_model(name)
        for _ in range(sizes.catalog_versions):
            start = time.perf_counter()
            client.create_model_version(name, source=source, run_id=None)
            samples.append(time.perf_counter() - start)
    ops["populate_version"] = summarize(samples)

    def list_versions() -> int:
        # max_results=10,000 is the client's default page (the SQL store accepts up to 200,000).
        count, token = 0, None
        while True:
            page = client.search_model_versions(max_results=10_000, page_token=token)
            count += len(page)
            token = page.token
            if not token:
                return count

    def list_models() -> int:
        # search_registered_models pages at most 1,000 models at a time.
        count, token = 0, None
        while True:
            page = client.search_registered_models(max_results=1000, page_token=token)
            count += len(page)
            token = page.token
            if not token:
                return count

    counts = {"versions": list_versions(), "models": list_models()}
    if counts != {"versions": sizes.catalog_size, "models": sizes.catalog_models}:
        raise SystemExit(f"MLflow listed {counts}, expected {sizes.catalog_size} versions")
    log(f"list {sizes.catalog_size} versions and {sizes.catalog_models} models x{sizes.list_reps}")
    ops["list_versions"] = summarize(time_calls(lambda i: list_versions(), sizes.list_reps, warmup=1))
    ops["list_models"] = summarize(time_calls(lambda i: list_models(), sizes.list_reps, warmup=1))
    facts["listed_versions"] = counts["versions"]
    facts["listed_models"] = counts["models"]

    return {
        "side": "mlflow",
        "versions": {
            "python": platform.python_version(),
            "mlflow": metadata.version("mlflow"),
            "scikit-learn": metadata.version("scikit-learn"),
            "skops": metadata.version("skops"),
            "pandas": metadata.version("pandas"),
            "sqlalchemy": metadata.version("sqlalchemy"),
        },
        "explicit_requirements": requirements,
        "ops": ops,
        "facts": facts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", required=True, help="the Sizes, as JSON")
    parser.add_argument("--workdir", required=True, type=Path, help="an empty folder outside any git repo")
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")  # MLflow warns about integer columns and more on every call
    result = run(Sizes(**json.loads(args.sizes)), args.workdir)
    print(RESULT_MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
