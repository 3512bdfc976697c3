"""The facade's read-only views for the dashboard and the portfolio, in the embedded body: a deployment's traffic
and monitors, the catalog with each model's stage, health and debt, and model debt over time. A part of
``LocalSteward``, kept apart to keep each module about one concern."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelsteward.domain.monitoring import (
    MonitorResult,
)
from modelsteward.domain.records import (
    DebtPoint,
    DebtReport,
    Deployment,
    ModelOverview,
)
from modelsteward.errors import InvalidArgument, NotFound
from modelsteward.governance.permissions import Reach

if TYPE_CHECKING:
    from datetime import date, datetime

    import pandas as pd

    from modelsteward.reporting.deployment_watch import Distribution, Watch
    from modelsteward.reporting.portfolio import Portfolio
    from modelsteward.reporting.traffic import Traffic


class ViewMethods:
    """Mixed into :class:`~modelsteward.local_steward.LocalSteward`, whose services and checks it uses."""

    # -- a deployment's monitoring, as the dashboard shows it (modelsteward.reporting) ------------------

    def traffic(
        self,
        deployment: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        days: int = 60,
        bucket: str = "1d",
    ) -> Traffic:
        """Answers, failed answers and latency (p50, p95) per time bucket and arm, from the prediction log;
        by default the ``days`` up to the deployment's latest answer."""
        self._authorize("catalog.read", models=self._deployment_models(deployment))
        self.deployments.get(deployment)  # an unknown deployment is NotFound, not an empty chart
        from modelsteward.reporting.traffic import traffic_window

        root = self.settings.resolved_inference_url()
        return traffic_window(root, deployment, since=since, until=until, days=days, bucket=bucket)

    def traffic_summary(self, *, since: datetime) -> pd.DataFrame:
        """Per deployment and arm: answers and failed answers since ``since``, and the latest answer's time."""
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        from modelsteward.reporting.traffic import traffic_summary

        return traffic_summary(self.settings.resolved_inference_url(), since=since)

    def kpi_names(self, scope: str | None = None) -> list[tuple[str, str, int]]:
        """(kpi, scope, points) of every KPI with observations (in ``scope``)."""
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.monitors.kpis(scope)

    def deployment_monitors(self, deployment: str) -> list[Watch]:
        """The monitors on a deployment's traffic, then those on a model it serves (elsewhere too)."""
        self._authorize("catalog.read", models=self._deployment_models(deployment))
        from modelsteward.reporting.deployment_watch import watching

        def lookup(name: str) -> Deployment | None:
            try:
                return self.deployments.get(name)
            except NotFound:
                return None

        return watching(self.deployments.get(deployment), self.monitors.list(), lookup)

    def drift_distributions(self, monitor: str, result: MonitorResult | None = None) -> list[Distribution]:
        """Reference and current shares of the columns a drift run (the latest by default) found drifted."""
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        from modelsteward.reporting.deployment_watch import drift_distributions

        spec = self.monitors.get(monitor)
        if result is None:
            results = self.monitors.results(monitor, limit=1)
            if not results:
                return []
            result = results[0]
        return drift_distributions(self, spec, result)

    @property
    def portfolio(self) -> Portfolio:
        from modelsteward.reporting.portfolio import Portfolio

        return Portfolio(self.catalog, self.monitors, self.lifecycles, self.alerts, self.compliance)

    def model_debt(self, model: str | None = None, *, max_age: str = "180d", stale_after: str = "2d") -> DebtReport:
        self._authorize("catalog.read", model=model, reach=Reach.ANYWHERE)
        from datetime import UTC, datetime

        from modelsteward.domain.monitoring import parse_duration

        now = datetime.now(UTC)
        try:
            limits = parse_duration(max_age), parse_duration(stale_after)
        except ValueError as e:
            raise InvalidArgument(str(e), details={"field": "max_age"}) from e
        models = [self.catalog.get_model(model)] if model else self.catalog.search_models(limit=None).items
        debts = self.portfolio.debts(models, now=now, max_age=limits[0], stale_after=limits[1])
        debts.sort(key=lambda d: (-d.score, d.model))
        return DebtReport(models=debts, total=sum(d.score for d in debts),
                          with_debt=sum(1 for d in debts if d.score), checked_at=now)  # fmt: skip

    def record_debt(self, day: date | None = None) -> int:
        self._authorize("monitor.run")
        from datetime import UTC, datetime, time, timedelta

        from modelsteward.store import debt_repo

        now = datetime.now(UTC)
        day = day or now.date()
        # a past day (the demo's simulated calendar) is judged as at its end, so that ages count to that day
        at = min(now, datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC) - timedelta(microseconds=1))
        models = self.catalog.search_models(limit=None).items
        debts = self.portfolio.debts(models, now=at, max_age=timedelta(days=180), stale_after=timedelta(days=2))
        with self.db.write() as conn:
            return debt_repo.upsert(conn, day, debts)

    def debt_history(self, days: int = 90) -> list[DebtPoint]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        from datetime import UTC, datetime, timedelta

        from modelsteward.store import debt_repo

        if days < 1:
            raise InvalidArgument("days must be 1 or more", details={"field": "days"})
        since = datetime.now(UTC).date() - timedelta(days=days - 1)
        with self.db.read() as conn:
            return debt_repo.history(conn, since)

    def catalog_overview(self, **filters: Any) -> tuple[list[ModelOverview], int]:
        """One page of the catalog (``search_models``' filters, ``limit``, ``offset``, ``order_by``) with each
        model's stage, production version, health, open alerts and debt; and the number of matching models."""
        from datetime import UTC, datetime

        page = self.search_models(**filters)
        return self.portfolio.overview(page.items, now=datetime.now(UTC)), page.total
