"""The gateway through the embedded facade: routing, stickiness, shadows, rollback, re-routing, logging."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelsteward import Conflict, InvalidArgument, LocalSteward, ModelFailure, NotFound, SchemaMismatch
from modelsteward.serving.prediction_log import count, query
from modelsteward.settings import Settings


class Scale:
    input_schema = {"x": "number"}

    def __init__(self, factor: float, delay: float = 0.0, fail: bool = False) -> None:
        self.factor, self.delay, self.fail = factor, delay, fail

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model exploded")
        return pd.DataFrame({"y": df["x"] * self.factor})


@pytest.fixture
def st(tmp_path: Path):
    steward = LocalSteward(
        settings=Settings(data_dir=tmp_path, route_refresh_interval=0.05, log_flush_interval=0.1, user="tester")
    )
    for model in (Scale(1), Scale(2), Scale(3, fail=True), Scale(4, delay=0.3)):
        steward.register_model("m", model, kind="python")
    steward.set_alias("m", "production", 1)
    steward.set_alias("m", "challenger", 2)
    yield steward
    steward.close()


def frame(n: int = 1, **extra) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(1, n + 1, dtype=float), **extra})


def test_champion_answers_and_names_its_version(st: LocalSteward) -> None:
    st.deploy("scoring", "m@production")
    served = st.serve("scoring", frame(3), request_id="req-1")
    assert served.model_version == "m/1"
    assert served.outputs["y"].tolist() == [1.0, 2.0, 3.0]
    assert served.prediction_ids == ["req-1-0", "req-1-1", "req-1-2"]
    assert st.serve("scoring", frame(1), request_id="solo").prediction_ids == ["solo"]


def test_challenger_share_within_tolerance(st: LocalSteward) -> None:
    st.deploy("scoring", "m@production", challengers={"m@challenger": 0.2})
    versions = [st.serve("scoring", frame()).model_version for _ in range(2000)]
    share = versions.count("m/2") / len(versions)
    assert abs(share - 0.2) < 0.04  # 2,000 requests: the standard error is 0.009


def test_sticky_key_pins_a_customer_to_an_arm(st: LocalSteward) -> None:
    st.deploy("scoring", "m@production", challengers={"m@challenger": 0.5}, sticky_key="customer_id")
    for customer in ("alice", "bob", "carol", "dave"):
        seen = {st.serve("scoring", frame(customer_id=[customer])).model_version for _ in range(20)}
        assert len(seen) == 1
    batch = st.serve("scoring", frame(200, customer_id=[f"c{i}" for i in range(200)]))
    assert set(batch.versions) == {"m/1", "m/2"}  # one request, rows split by customer
    assert batch.outputs.index.tolist() == list(range(200))
    with pytest.raises(SchemaMismatch, match="customer_id"):
        st.serve("scoring", frame())


def test_a_request_split_between_arms_is_logged_at_the_given_time(st: LocalSteward) -> None:
    from datetime import UTC, datetime

    st.deploy("scoring", "m@production", challengers={"m@challenger": 0.5}, sticky_key="customer_id")
    past = datetime(2026, 1, 5, 12, tzinfo=UTC)
    served = st.serve("scoring", frame(200, customer_id=[f"c{i}" for i in range(200)]), at=past)
    assert set(served.versions) == {"m/1", "m/2"}
    st.flush_logs()
    logged = query(st.settings.resolved_inference_url())
    assert len(logged) == 200 and set(logged["version"]) == {1, 2}
    assert {t.to_pydatetime() for t in logged["ts"]} == {past}  # both arms, at the time the caller gave


def test_canary_steps_up_to_all_traffic(st: LocalSteward) -> None:
    st.deploy("scoring", "m@production", challengers={"m@challenger": 0.05}, sticky_key="customer_id")
    customers = [f"c{i}" for i in range(400)]
    small = st.serve("scoring", frame(400, customer_id=customers))
    on_canary_before = set(np.asarray(customers)[small.outputs["y"].to_numpy() == 2 * frame(400)["x"].to_numpy()])
    st.set_traffic("scoring", {"m@challenger": 0.25})
    st.gateway.refresh()
    large = st.serve("scoring", frame(400, customer_id=customers))
    on_canary_after = set(np.asarray(customers)[large.outputs["y"].to_numpy() == 2 * frame(400)["x"].to_numpy()])
    assert on_canary_before <= on_canary_after and len(on_canary_after) > len(on_canary_before)
    st.set_traffic("scoring", {"m@challenger": 1.0})
    st.gateway.refresh()
    assert st.serve("scoring", frame(50, customer_id=customers[:50])).versions == ["m/2"]


def test_shadow_never_affects_the_caller(st: LocalSteward) -> None:
    st.deploy("scoring", "m@production", shadows=["m/3", "m/4"])  # one fails, one is slow
    started = time.perf_counter()
    served = st.serve("scoring", frame(2), request_id="r")
    elapsed = time.perf_counter() - started
    assert served.outputs["y"].tolist() == [1.0, 2.0]
    assert elapsed < 0.25  # the slow shadow sleeps 0.3 s on its own thread
    st.stop_serving()  # waits for the shadows, then flushes the log
    logged = query(st.settings.resolved_inference_url())
    by_arm = logged.groupby("arm")["status"].agg(list).to_dict()
    assert by_arm["champion"] == ["ok", "ok"]
    assert sorted(by_arm["shadow"]) == ["error", "error", "ok", "ok"]
    assert set(logged.loc[logged["status"] == "error", "error"]) == {"RuntimeError: model exploded"}


def test_a_failing_model_gives_a_500_with_ids_and_a_logged_error(st: LocalSteward) -> None:
    st.deploy("broken", "m/3")
    st.deploy("fine", "m/1")
    with pytest.raises(ModelFailure) as info:
        st.serve("broken", frame(), request_id="bad")
    assert info.value.http_status == 500 and info.value.details["prediction_ids"] == ["bad"]
    assert st.serve("fine", frame()).outputs["y"].tolist() == [1.0]  # the others keep serving
    st.stop_serving()
    errors = query(st.settings.resolved_inference_url(), "status = 'error'")
    assert errors["prediction_id"].tolist() == ["bad"]


def test_moving_an_alias_reroutes_without_a_restart(st: LocalSteward) -> None:
    st.deploy("scoring", "m@production")
    assert st.serve("scoring", frame()).model_version == "m/1"
    st.set_alias("m", "production", 2)
    deadline = time.monotonic() + 5
    while st.serve("scoring", frame()).model_version != "m/2":
        assert time.monotonic() < deadline, "the gateway did not pick up the alias move"
        time.sleep(0.02)


def test_rollback_returns_to_the_previous_route_set(st: LocalSteward) -> None:
    st.deploy("scoring", "m@production")
    st.set_traffic("scoring", {})  # same route set, new revision
    st.deploy("scoring", "m/2", challengers={"m/1": 0.1})
    rolled = st.rollback("scoring")
    assert rolled.spec.champion == "m@production" and rolled.revision == 4
    again = st.rollback("scoring")
    assert again.spec.champion == "m@production" and again.revision == 5
    with pytest.raises(Conflict, match="no earlier route set"):
        st.rollback("scoring")
    history = st.deployment_history("scoring")
    assert [h.action for h in history] == ["rollback", "rollback", "deploy", "traffic", "deploy"]
    st.gateway.refresh()
    assert st.serve("scoring", frame()).model_version == "m/1"


def test_undeploy_stops_serving_and_rollback_restores(st: LocalSteward) -> None:
    st.deploy("scoring", "m@production")
    assert st.undeploy("scoring").status == "retired"
    st.gateway.refresh()
    with pytest.raises(NotFound, match="no active deployment"):
        st.serve("scoring", frame())
    assert st.rollback("scoring").status == "active"
    st.gateway.refresh()
    assert st.serve("scoring", frame()).model_version == "m/1"


def test_bad_route_sets_are_refused(st: LocalSteward) -> None:
    with pytest.raises(NotFound, match="no alias 'ghost'"):
        st.deploy("scoring", "m@ghost")
    with pytest.raises(InvalidArgument, match="add up to more than 1"):
        st.deploy("scoring", "m@production", challengers={"m/2": 0.7, "m/3": 0.6})
    with pytest.raises(InvalidArgument, match="exactly one of champion"):
        st.deploy("scoring")
    with pytest.raises(InvalidArgument, match="invalid deployment"):
        st.deploy("bad name!", "m/1")
    assert st.list_deployments() == []


def test_deployments_appear_in_lineage_and_events(st: LocalSteward) -> None:
    st.deploy("scoring", "m@production", shadows=["m/4"])
    downstream = st.get_lineage("m/1").downstream
    assert [(e.target, e.relation) for e in downstream] == [("scoring", "serves_as_champion")]
    assert [(e.target, e.relation) for e in st.get_lineage("m/4").downstream] == [("scoring", "serves_as_shadow")]
    assert st.list_events(limit=1)[0].action == "deployment.deployed"


def test_every_served_prediction_is_logged(st: LocalSteward) -> None:
    st.deploy("scoring", "m@production")
    for i in range(25):
        st.serve("scoring", frame(4), request_id=f"r{i}")
    st.stop_serving()
    root = st.settings.resolved_inference_url()
    assert count(root, deployment="scoring") == 100
    logged = query(root)
    assert set(logged.columns) >= {"prediction_id", "request_id", "in_x", "out_y", "model", "version", "ref", "ts"}
    assert logged["version"].unique().tolist() == [1]
    assert logged["ref"].unique().tolist() == ["m@production"]


def test_feedback_is_recorded(st: LocalSteward) -> None:
    from modelsteward.serving.feedback_log import join_feedback

    st.deploy("scoring", "m@production")
    served = st.serve("scoring", frame(3), request_id="r")
    assert st.send_feedback("scoring", [{"prediction_id": pid, "actual": 1} for pid in served.prediction_ids]) == 3
    with pytest.raises(InvalidArgument, match="prediction_id"):
        st.send_feedback("scoring", [{"actual": 1}])
    with pytest.raises(NotFound):
        st.send_feedback("ghost", [{"prediction_id": "x", "actual": 1}])
    st.stop_serving()
    joined = join_feedback(
        st.settings.resolved_inference_url(), st.settings.resolved_feedback_url(), deployment="scoring"
    )
    assert sorted(joined["prediction_id"]) == sorted(served.prediction_ids)
    assert joined["actual"].tolist() == [1, 1, 1]
