"""The serving benchmark's reference: the least a Python server on the same stack can do for a v2 request.

A bare Starlette app under the same uvicorn (one worker, default log level): read the body, ``orjson.loads``,
one NumPy column per v2 tensor stacked into a matrix, ``predict_proba`` on that matrix, the label taken as the
class of the highest probability, an ``orjson`` answer with the label and both probabilities. No signature check,
no routing, no prediction ids, no log. It serves the estimator bench_serving.py pickled to ``$STEWARD_BENCH_MODEL``:

    STEWARD_BENCH_MODEL=model.pkl .venv/bin/python -m uvicorn serving_floor_app:app --port 8800 --workers 1
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# The estimator was fitted on a DataFrame; it is given a NumPy matrix in the same column order.
warnings.filterwarnings("ignore", message="X does not have valid feature names")

MODEL = pickle.loads(Path(os.environ["STEWARD_BENCH_MODEL"]).read_bytes())


def answer(body: bytes) -> bytes:
    doc = orjson.loads(body)
    X = np.column_stack([np.asarray(t["data"], dtype=np.float64) for t in doc["inputs"]])
    proba = MODEL.predict_proba(X)
    labels = MODEL.classes_[proba.argmax(axis=1)]
    n = len(X)
    outputs = [{"name": "prediction", "datatype": "INT64", "shape": [n], "data": labels.tolist()}]
    outputs += [
        {"name": f"proba_{c}", "datatype": "FP64", "shape": [n], "data": proba[:, j].tolist()}
        for j, c in enumerate(MODEL.classes_.tolist())
    ]
    return orjson.dumps({"model_name": "floor", "outputs": outputs})


async def infer(request: Request) -> Response:
    return Response(answer(await request.body()), media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b'{"ready":true}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
    ]
)
