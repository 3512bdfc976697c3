"""MLflow's side of the serving benchmark: log the two models that ``mlflow models serve`` will serve.

Run by bench_serving.py with the peer virtualenv's python, from a temporary folder outside any git repository
(with workload.py copied beside it). It fits the same estimators as our side (workload.build_workload), logs
each with ``mlflow.sklearn.log_model`` on a fresh SQLite tracking store, with explicit pip requirements, and
registers it; then prints one ``BENCH-RESULT {json}`` line on stdout: the tracking URI, each model's
``models:/<name>/<version>`` URI, and the versions used. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow  # noqa: E402 - telemetry must be off before MLflow is imported
import mlflow.sklearn  # noqa: E402
import skops.io as sio  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from workload import RESULT_MARKER, build_workload  # noqa: E402


def log(message: str) -> None:
    print(f"[mlflow] {message}", file=sys.stderr, flush=True)


def explicit_requirements() -> list[str]:
    """What a careful user writes by hand: the packages the model needs, pinned."""
    names = ["mlflow", "scikit-learn", "numpy", "scipy", "skops", "pandas"]
    return [f"{n}=={metadata.version(n)}" for n in names]


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def run(workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("serving", artifact_location=(workdir / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    wl = build_workload()
    requirements = explicit_requirements()
    models = {}
    for name, model in (("tiny", wl.tiny), ("forest", wl.forest)):
        log(f"log and register {name}")
        example = wl.example
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=name,
                signature=infer_signature(example, model.predict(example)),
                input_example=example,
                pip_requirements=requirements,
                skops_trusted_types=sio.get_untrusted_types(data=sio.dumps(model)),
            )
        models[name] = f"models:/{name}/{info.registered_model_version}"
    return {
        "side": "mlflow",
        "tracking_uri": uri,
        "models": models,
        "facts": {"forest_auc": wl.forest_auc, "tiny_auc": wl.tiny_auc},
        "explicit_requirements": requirements,
        "versions": {
            "python": platform.python_version(),
            "mlflow": metadata.version("mlflow"),
            "scikit-learn": metadata.version("scikit-learn"),
            "skops": metadata.version("skops"),
            "pandas": metadata.version("pandas"),
            "numpy": metadata.version("numpy"),
            "fastapi": metadata.version("fastapi"),
            "uvicorn": metadata.version("uvicorn"),
            "uvloop": _version("uvloop"),
            "httptools": _version("httptools"),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True, type=Path, help="an empty folder outside any git repo")
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    result = run(args.workdir)
    print(RESULT_MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
