"""The gateway: routes held in memory, refreshed when the catalog changes, and the request path.

A request touches no database and no file: the route table, the loaded models and the prediction
log's buffer are all in memory. A background thread reads the catalog generation every
``refresh_interval`` seconds and, when it moved (an alias, a deployment, a rollback), rebuilds the
routes and swaps them in at once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from modelsteward.catalog.service import CatalogService
from modelsteward.domain.records import DeploymentSpec, Signature
from modelsteward.errors import InvalidArgument, ModelFailure, NotFound, StewardError
from modelsteward.kinds.loaded import LoadedModel
from modelsteward.serving import routing
from modelsteward.serving.deployments import DeploymentService
from modelsteward.serving.prediction_log import PredictionBatch
from modelsteward.serving.protocols.frames import column_arrays

log = logging.getLogger("modelsteward.gateway")
BROKEN_RETRY_SECONDS = 2.0  # how often a deployment that could not be built is tried again

MAX_PENDING_SHADOWS = 256


@dataclass(frozen=True)
class Arm:
    role: str
    ref: str
    model: LoadedModel

    @property
    def version(self) -> str:
        return self.model.ref


@dataclass(frozen=True)
class Route:
    """A deployment compiled for serving: arms in slice order (challengers, then the champion)."""

    name: str
    revision: int
    arms: list[Arm]
    bounds: np.ndarray
    shadows: list[Arm]
    sticky_key: str | None
    salt: str
    log_predictions: bool
    pipeline: Any = None
    signature: Signature | None = None


@dataclass
class Served:
    """The answer to one request."""

    deployment: str
    request_id: str
    prediction_ids: list[str]
    outputs: pd.DataFrame
    versions: list[str]
    arms: list[str] = field(default_factory=list)

    @property
    def model_version(self) -> str:
        """The version that answered, or the versions joined by commas when arms split the rows."""
        return ",".join(self.versions)


class PredictionSink(Protocol):
    """Where predictions go; the prediction log implements it, tests may pass a list-backed one."""

    def append(self, deployment: str, batch: PredictionBatch) -> Any: ...


def prediction_ids(request_id: str, n_rows: int) -> list[str]:
    """The request's id for a one-row request, else ``<id>-<row>``: what feedback joins on."""
    return [request_id] if n_rows == 1 else [f"{request_id}-{i}" for i in range(n_rows)]


def run_arm(
    deployment: str,
    arm: Arm,
    frame: pd.DataFrame,
    *,
    request_id: str,
    ids: list[str],
    checked: Signature | None = None,
    sink: PredictionSink | None = None,
    on_served: Callable[[str, str, str, str, float], None] | None = None,
    step: str | None = None,
    ts: Any = None,
) -> pd.DataFrame:
    """Predict with one arm and record it: the log row (also for a failure) and the served counter.

    ``checked`` is a signature the frame already conforms to (the protocol decoders check it); an arm
    with that signature skips the check. A model that raises becomes a :class:`ModelFailure` (500)
    naming the prediction ids; a :class:`SchemaMismatch` from the check is the caller's 422.
    """
    model = arm.model
    names = model.signature.input_names
    if checked is not None and (model.signature is checked or model.signature == checked):
        prepared = frame if frame.columns.tolist() == names else frame[names]
    else:
        prepared = model.prepare(frame, allow_extra=True)
    started = time.perf_counter()
    error: str | None = None
    outputs: pd.DataFrame | None = None
    try:
        outputs = model.kind.predict(model.native, prepared)
    except Exception as e:  # noqa: BLE001 - a failing model must not take the server down
        error = f"{type(e).__name__}: {e}"
        failure: Exception | None = e
    else:
        failure = None
    latency = (time.perf_counter() - started) * 1000
    if sink is not None:
        version = model.version
        sink.append(
            deployment,
            PredictionBatch(
                ts=ts if ts is not None else time.time_ns(),
                request_id=request_id,
                arm=arm.role,
                model=version.name,
                version=version.version,
                ref=arm.ref,
                latency_ms=latency,
                status="error" if error else "ok",
                error=error,
                step=step,
                prediction_ids=ids,
                # Column arrays by position: a fraction of a microsecond each, where frame[c] costs tens.
                inputs=dict(zip(names, column_arrays(prepared), strict=True)),
                outputs={}
                if outputs is None
                else dict(zip(map(str, outputs.columns.tolist()), column_arrays(outputs), strict=True)),
            ),
        )
    if on_served is not None:
        on_served(deployment, arm.role, arm.version, "error" if error else "ok", latency)
    if failure is not None:
        raise ModelFailure(
            f"{arm.version} failed on this request: {error}",
            details={"deployment": deployment, "model_version": arm.version, "prediction_ids": ids},
        ) from failure
    assert outputs is not None
    return outputs


def require_rows(n: int) -> None:
    """Zero rows is the caller's mistake: no arm would be chosen, and each model refuses them its own way."""
    if n == 0:
        raise InvalidArgument("nothing to predict: the request holds no rows", details={"field": "rows", "rows": 0})


class Gateway:
    """Serves deployments from memory; ``start()`` builds the routes, ``close()`` drains shadows."""

    def __init__(
        self,
        catalog: CatalogService,
        deployments: DeploymentService,
        sink: PredictionSink | None,
        *,
        refresh_interval: float = 0.5,
        shadow_workers: int = 2,
        bind_pipeline: Callable[[dict[str, Any], Callable[[str], LoadedModel]], Any] | None = None,
        on_served: Callable[[str, str, str, str, float], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.deployments = deployments
        self.sink = sink
        self.refresh_interval = refresh_interval
        self.bind_pipeline = bind_pipeline
        self.on_served = on_served
        self._routes: dict[str, Route] = {}
        self._generation = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shadows = ThreadPoolExecutor(max_workers=shadow_workers, thread_name_prefix="steward-shadow")
        self._pending_shadows = threading.BoundedSemaphore(MAX_PENDING_SHADOWS)
        self._rng = np.random.default_rng()
        self._last_miss_refresh = 0.0
        self.ready = False
        self.shadows_dropped = 0
        self.last_refresh_error: str | None = None
        # Why each active deployment could not be built (e.g. its artifact is unreadable): answered to its
        # callers instead of "not deployed", and retried on every refresh until the build succeeds.
        self._broken: dict[str, StewardError] = {}
        self._retry_broken_at = 0.0  # monotonic time of the next retry (each re-reads artifacts and logs a warning)

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.refresh(force=True)
        self.ready = True
        self._thread = threading.Thread(target=self._refresh_loop, name="steward-routes", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._shadows.shutdown(wait=True)
        for route in self._routes.values():
            if route.pipeline is not None:
                route.pipeline.close()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001 - the loop must survive anything and keep serving
                self.last_refresh_error = f"{type(e).__name__}: {e}"
                log.warning("route refresh failed; serving the routes held in memory: %s", e)

    def refresh(self, *, force: bool = False) -> bool:
        """Rebuild the routes if the catalog changed since the last build; True if it did."""
        generation = self.catalog.generation()
        unchanged = not force and generation == self._generation
        if unchanged and (not self._broken or time.monotonic() < self._retry_broken_at):
            return False
        with self._lock:
            routes: dict[str, Route] = {}
            broken: dict[str, StewardError] = {}
            for deployment in self.deployments.list(status="active"):
                name = deployment.name
                if unchanged and name in self._routes and name not in self._broken:
                    routes[name] = self._routes[name]  # only retrying the broken ones
                    continue
                try:
                    routes[name] = self._compile(name, deployment.revision, deployment.spec)
                except StewardError as e:
                    # e.g. an artifact the store cannot read now: keep serving the previous route.
                    self.last_refresh_error = f"{name}: {e.message}"
                    log.warning("cannot build the route of %s: %s", name, e.message)
                    broken[name] = e
                    if name in self._routes:
                        routes[name] = self._routes[name]
            old = self._routes
            self._routes = routes
            self._broken = broken
            self._retry_broken_at = time.monotonic() + BROKEN_RETRY_SECONDS
            self._generation = generation
        for name, route in old.items():
            if route.pipeline is not None and routes.get(name) is not route:
                route.pipeline.close()
        return True

    def _load(self, ref: str) -> LoadedModel:
        return self.catalog.load(self.catalog.get_version(ref))

    def _compile(self, name: str, revision: int, spec: DeploymentSpec) -> Route:
        if spec.pipeline is not None:
            if self.bind_pipeline is None:
                raise NotFound(f"deployment {name!r} is a pipeline, and this gateway cannot run pipelines")
            pipeline = self.bind_pipeline(spec.pipeline, self._load)
            return Route(
                name=name,
                revision=revision,
                arms=[],
                bounds=np.array([1.0]),
                shadows=[],
                sticky_key=None,
                salt=routing.salt_for(name),
                log_predictions=spec.log_predictions,
                pipeline=pipeline,
                signature=getattr(pipeline, "signature", None),
            )
        assert spec.champion is not None
        arms = [Arm("challenger", ref, self._load(ref)) for ref in spec.challengers]
        arms.append(Arm("champion", spec.champion, self._load(spec.champion)))
        weights = [*spec.challengers.values(), 1 - sum(spec.challengers.values())]
        return Route(
            name=name,
            revision=revision,
            arms=arms,
            bounds=routing.cumulative(weights),
            shadows=[Arm("shadow", ref, self._load(ref)) for ref in spec.shadows],
            sticky_key=spec.sticky_key,
            salt=routing.salt_for(name),
            log_predictions=spec.log_predictions,
            signature=arms[-1].model.signature,
        )

    # -- the request path ---------------------------------------------------------------------------

    def route(self, name: str) -> Route:
        route = self._routes.get(name)
        if route is None:
            # Perhaps deployed a moment ago: look once, at most every refresh interval.
            now = time.monotonic()
            if now - self._last_miss_refresh > self.refresh_interval:
                self._last_miss_refresh = now
                self.refresh()
                route = self._routes.get(name)
        if route is None:
            broken = self._broken.get(name)
            if broken is not None:
                # A fresh error per request: one shared instance would gather every caller's traceback.
                raise type(broken)(broken.message, details={**broken.details, "deployment": name})
            raise NotFound(f"no active deployment named {name!r}", details={"deployment": name})
        return route

    def serve(
        self,
        name: str,
        frame: pd.DataFrame,
        *,
        request_id: str | None = None,
        checked_against: Signature | None = None,
        at: datetime | None = None,
    ) -> Served:
        """Answer one request. ``checked_against`` is the signature the caller already conformed the
        frame to (the protocol decoders do); arms with that signature skip checking it again. ``at``
        records another time than now in the log (backfills and simulations)."""
        route = self.route(name)
        checked = checked_against
        request_id = request_id or uuid.uuid4().hex
        n = len(frame)
        require_rows(n)
        ids = prediction_ids(request_id, n)
        if route.pipeline is not None:
            return self._serve_pipeline(route, frame, request_id, ids, at)
        keys = None
        if route.sticky_key is not None and len(route.arms) > 1:
            if route.sticky_key not in frame.columns:
                from modelsteward.errors import SchemaMismatch

                raise SchemaMismatch(
                    f"deployment {name!r} routes by {route.sticky_key!r}, which the request lacks",
                    details={
                        "column": route.sticky_key,
                        "problems": [{"column": route.sticky_key, "problem": "missing"}],
                    },
                )
            keys = frame[route.sticky_key]
        chosen = routing.choose_for_request(route.bounds, n, rng=self._rng, keys=keys, salt=route.salt)
        used = np.unique(chosen)
        if len(used) == 1:
            arm = route.arms[int(used[0])]
            outputs = self._predict(route, arm, frame, request_id, ids, checked, at)
            versions, arms = [arm.version], [arm.role]
        else:
            parts = []
            versions, arms = [], []
            for index in used:
                arm = route.arms[int(index)]
                mask = chosen == index
                rows = frame[mask]
                arm_ids = [i for i, m in zip(ids, mask, strict=True) if m]
                parts.append(self._predict(route, arm, rows, request_id, arm_ids, checked, at))
                versions.append(arm.version)
                arms.append(arm.role)
            outputs = pd.concat(parts).reindex(frame.index)
        for shadow in route.shadows:
            self._schedule_shadow(route, shadow, frame, request_id, ids, checked, at)
        return Served(
            deployment=name, request_id=request_id, prediction_ids=ids, outputs=outputs, versions=versions, arms=arms
        )

    def _predict(
        self,
        route: Route,
        arm: Arm,
        frame: pd.DataFrame,
        request_id: str,
        ids: list[str],
        checked: Signature | None = None,
        at: datetime | None = None,
    ) -> pd.DataFrame:
        return run_arm(
            route.name,
            arm,
            frame,
            request_id=request_id,
            ids=ids,
            checked=checked,
            sink=self.sink if route.log_predictions else None,
            on_served=self.on_served,
            ts=at,
        )

    def _schedule_shadow(
        self,
        route: Route,
        arm: Arm,
        frame: pd.DataFrame,
        request_id: str,
        ids: list[str],
        checked: Signature | None,
        at: datetime | None = None,
    ) -> None:
        # A shadow never delays or fails the caller: it runs on its own threads, and when too many are
        # waiting the newest is skipped (and counted) rather than queued without bound.
        if not self._pending_shadows.acquire(blocking=False):
            self.shadows_dropped += 1
            return

        def run() -> None:
            try:
                self._predict(route, arm, frame, request_id, ids, checked, at)
            except Exception as e:  # noqa: BLE001 - already logged as an error row where it was a model failure
                log.debug("shadow %s failed: %s", arm.version, e)
            finally:
                self._pending_shadows.release()

        try:
            self._shadows.submit(run)
        except RuntimeError:  # shutting down
            self._pending_shadows.release()

    def _serve_pipeline(
        self, route: Route, frame: pd.DataFrame, request_id: str, ids: list[str], at: datetime | None = None
    ) -> Served:
        started = time.perf_counter()
        try:
            result = route.pipeline.run(frame)
        except StewardError:
            raise
        except Exception as e:  # noqa: BLE001
            raise ModelFailure(
                f"pipeline {route.name!r} failed: {type(e).__name__}: {e}",
                details={"deployment": route.name, "prediction_ids": ids},
            ) from e
        total = (time.perf_counter() - started) * 1000
        versions = []
        id_array = np.asarray(ids, dtype=object)
        position = pd.Series(np.arange(len(frame)), index=frame.index)
        for step in result.steps:
            if self.sink is not None and route.log_predictions and step.kind == "model":
                step_ids = list(id_array[position.loc[step.rows].to_numpy()])
                self.sink.append(
                    route.name,
                    PredictionBatch(
                        ts=at if at is not None else time.time_ns(),
                        request_id=request_id,
                        arm="pipeline",
                        model=step.version.split("/")[0],
                        version=int(step.version.split("/")[1]),
                        ref=step.ref,
                        latency_ms=step.latency_ms,
                        status="ok",
                        error=None,
                        step=step.name,
                        prediction_ids=step_ids,
                        inputs={str(c): step.inputs[c].to_numpy() for c in step.inputs.columns},
                        outputs={str(c): step.outputs[c].to_numpy() for c in step.outputs.columns},
                    ),
                )
            if step.kind == "model":
                versions.append(step.version)
        if self.on_served is not None:
            self.on_served(route.name, "pipeline", "pipeline", "ok", total)
        return Served(
            deployment=route.name,
            request_id=request_id,
            prediction_ids=ids,
            outputs=result.outputs,
            versions=versions,
            arms=["pipeline"],
        )
