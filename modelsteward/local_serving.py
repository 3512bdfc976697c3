"""The facade's serving path for the embedded body: the in-process gateway and its pipelines, the prediction and
feedback logs (their limits, and the system alert a failing log raises), predictions, feedback and the serving
figures for /metrics. A part of ``LocalSteward``, kept apart to keep each module about one concern."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelsteward.domain.refs import model_of
from modelsteward.errors import StewardError

if TYPE_CHECKING:
    from datetime import datetime

    from modelsteward.domain.records import Signature
    from modelsteward.kinds.loaded import LoadedModel
    from modelsteward.serving.gateway import Gateway, Served


class ServingMethods:
    """Mixed into :class:`~modelsteward.local_steward.LocalSteward`, whose services and checks it uses; the
    gateway, the feedback log and their lock are its attributes, set up (empty) by its constructor."""

    def _check_pipeline(self, definition: dict[str, Any]) -> None:
        from modelsteward.serving.pipeline import PipelineSpec, bind

        spec = PipelineSpec.model_validate(definition)
        bind(
            spec, lambda ref: self.catalog.load(self.catalog.get_version(ref)), context=self._pipeline_context()
        ).close()

    def _pipeline_context(self) -> dict[str, str]:
        return {"DATA_DIR": str(self.settings.data_dir.resolve())}

    def _bind_pipeline(self, definition: dict[str, Any], resolve: Callable[[str], LoadedModel]) -> Any:
        from modelsteward.serving.pipeline import PipelineSpec, bind

        return bind(PipelineSpec.model_validate(definition), resolve, context=self._pipeline_context())

    def _served_models(self, name: str) -> set[str]:
        """The models a deployment routes to, from the gateway's memory (the serving path's check)."""
        if not self._enforce:
            return set()
        try:
            route = self.gateway.route(name)
        except StewardError:
            return set()
        refs = [arm.ref for arm in (*route.arms, *route.shadows)]
        refs += list(getattr(route.pipeline, "versions", {}).values()) if route.pipeline is not None else []
        return {model_of(ref) for ref in refs}

    @property
    def gateway(self) -> Gateway:
        """The in-process gateway (started on first use; ``steward up`` starts it at boot)."""
        if self._gateway is None:
            self.start_serving()
        assert self._gateway is not None
        return self._gateway

    def start_serving(self, *, on_served: Callable[[str, str, str, str, float], None] | None = None) -> Gateway:
        """Start the gateway and the prediction and feedback logs of this process (idempotent)."""
        with self._gateway_lock:
            if self._gateway is None:
                from modelsteward.serving.feedback_log import FeedbackLog
                from modelsteward.serving.gateway import Gateway
                from modelsteward.serving.prediction_log import PredictionLog, default_worker_name

                worker = default_worker_name()
                options = self._log_options()
                sink = PredictionLog(self.settings.resolved_inference_url(), worker=worker, **options)
                self._feedback = FeedbackLog(self.settings.resolved_feedback_url(), worker=worker, **options)
                gateway = Gateway(
                    self.catalog,
                    self.deployments,
                    sink,
                    refresh_interval=self.settings.route_refresh_interval,
                    bind_pipeline=self._bind_pipeline,
                    on_served=on_served,
                )
                gateway.start()
                self._gateway = gateway
        return self._gateway

    def _log_options(self) -> dict[str, Any]:
        """The logs' limits from the settings, and their alarm: a log whose writes keep failing raises a
        ``system`` alert naming the worker, the log and the error, from its writer thread (never on a request),
        and clears it once the rows it kept are written."""
        from modelsteward.alerts import SystemAlarm

        settings = self.settings
        alarm = SystemAlarm(self.alerts)

        def on_health(health: Any) -> None:
            details = {
                "worker": health.worker,
                "log": health.root,
                "error": health.error,
                "errno": health.errno,
                "failed_attempts": health.failed_attempts,
                "since": health.since.isoformat() if health.since is not None else None,
                "queue_depth": health.queue_depth,
                "max_queue_rows": health.max_queue_rows,
                "rows_rejected": health.rows_rejected,
            }
            alarm.report(
                f"{health.what}-log", health.worker, problem=health.failing, title=health.describe(), details=details
            )

        return {
            "flush_interval": settings.log_flush_interval,
            "max_queue_rows": settings.log_max_queue_rows,
            "max_buffer_rows": min(50_000, settings.log_max_queue_rows),
            "retry_max": settings.log_retry_max,
            "alert_after_failures": settings.log_alert_after_failures,
            "on_health": on_health,
            "on_error": lambda _error: alarm.retry(),
        }

    def serving_ready(self) -> bool:
        """Whether this process should get predictions: the routes are loaded and the prediction log takes
        rows (a log refusing them answers every request 503; a load balancer should send them elsewhere)."""
        gateway = self.gateway
        return gateway.ready and not getattr(gateway.sink, "refusing", False)

    def flush_logs(self, timeout: float = 30.0) -> None:
        """Write every prediction and feedback row this process has acknowledged (monitors call it first)."""
        gateway, feedback = self._gateway, self._feedback
        if gateway is not None:
            gateway.sink.flush(timeout)  # type: ignore[union-attr]
        if feedback is not None:
            feedback.flush(timeout)

    def stop_serving(self) -> None:
        """Stop the gateway: finish shadows, then flush both logs (nothing acknowledged is lost)."""
        with self._gateway_lock:
            if self._gateway is not None:
                self._gateway.close()
                self._gateway.sink.close()  # type: ignore[union-attr]
                self._gateway = None
            if self._feedback is not None:
                self._feedback.close()
                self._feedback = None

    def serve(
        self,
        name: str,
        data: Any,
        *,
        request_id: str | None = None,
        checked_against: Signature | None = None,
        at: datetime | None = None,
    ) -> Served:
        """``at`` records another time than now in the prediction log: backfills and simulations."""
        self._authorize("inference.predict", models=self._served_models(name))
        from modelsteward.stats.schema import to_frame

        return self.gateway.serve(name, to_frame(data), request_id=request_id, checked_against=checked_against, at=at)

    def serving_signature(self, name: str) -> Signature | None:
        """What a deployment's requests carry (its champion's or pipeline's inputs), from memory. The
        first step of a prediction: it checks inference.predict, so a refusal comes before any decoding."""
        self._authorize("inference.predict", models=self._served_models(name))
        return self.gateway.route(name).signature

    def serving_description(self, name: str) -> dict[str, Any]:
        self._authorize("catalog.read", models=self._served_models(name))
        route = self.gateway.route(name)
        versions = [arm.version for arm in route.arms] or sorted(getattr(route.pipeline, "versions", {}).values())
        return {"signature": route.signature, "versions": versions, "revision": route.revision}

    def send_feedback(self, name: str, rows: list[dict[str, Any]], *, at: datetime | None = None) -> int:
        """Record ground truth: each row has ``prediction_id`` and ``actual`` and/or ``actual_<name>``
        values (and optionally ``ts``, when the outcome was observed). Returns the rows accepted."""
        self._authorize("feedback.write", models=self._served_models(name))
        from modelsteward.serving.feedback_rows import feedback_batch

        self.deployments.get(name)  # NotFound for an unknown deployment
        batch = feedback_batch(rows)
        if at is not None:
            batch = batch._replace(ts=at)
        self.start_serving()  # the feedback log starts with the gateway
        assert self._feedback is not None
        self._feedback.append(name, batch)
        return len(batch.prediction_ids)

    def serving_stats(self) -> dict[str, float]:
        """Counters for /metrics: the log's queue and writes, shadows dropped."""
        if self._gateway is None:
            return {}
        sink = self._gateway.sink
        return {
            "log_queue_rows": float(getattr(sink, "queue_depth", 0)),
            "log_rows_written": float(getattr(sink, "rows_written", 0)),
            "log_write_errors": float(getattr(sink, "write_errors", 0)),
            "log_rows_rejected": float(getattr(sink, "rows_rejected", 0)),
            "log_failing": float(bool(getattr(sink, "failing", False))),
            "shadows_dropped": float(self._gateway.shadows_dropped),
        }
