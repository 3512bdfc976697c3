"""Champion against challenger on live traffic: promotion waits for enough evidence and a significant result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelsteward import LocalSteward
from modelsteward.domain.lifecycle import ChallengerGate, Gate
from modelsteward.lifecycle import gates
from modelsteward.settings import Settings

DEFINITION = """\
name: canary-first
stages: [{name: canary}, {name: production, single: true, replaced_to: retired}, {name: retired}]
transitions:
  - name: promote
    from: canary
    to: production
    gates:
      - challenger: {deployment: risk, metric: accuracy, window: 1d, min_samples: 150, require: better}
    actions:
      - promote: {deployment: risk}
models: [risk]
"""


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(0, 1, n), "z": rng.normal(0, 1, n)})


@pytest.fixture
def st(tmp_path: Path) -> Any:
    steward = LocalSteward(settings=Settings(data_dir=tmp_path, log_flush_interval=0.05), actor="dana")
    X = frame(2000, 0)
    weak = LogisticRegression().fit(X, X["z"] > 0)  # learns from z: wrong about the world, where x decides
    strong = LogisticRegression().fit(X, X["x"] > 0)
    steward.register_model("risk", weak, input_example=X.head())
    steward.register_model("risk", strong, input_example=X.head())
    steward.set_alias("risk", "production", 1)
    steward.deploy("risk", "risk@production", challengers={"risk/2": 0.5})
    steward.apply_lifecycle(DEFINITION)
    yield steward
    steward.close()


def traffic(st: Any, n: int, seed: int) -> None:
    requests = frame(n, seed)
    ids: list[str] = []
    for start in range(0, n, 5):  # the arm is drawn per request: many small requests share the traffic 50/50
        ids += st.serve("risk", requests.iloc[start : start + 5]).prediction_ids
    truth = (requests["x"] > 0).astype(int).tolist()
    st.send_feedback("risk", [{"prediction_id": i, "actual": a} for i, a in zip(ids, truth, strict=True)])
    st.flush_logs()


def test_promotion_waits_for_enough_samples_then_follows_the_evidence(st: Any) -> None:
    positions = {p.version: p.stage for p in st.lifecycle_status("risk").positions}
    assert positions == {1: "production", 2: "canary"}
    traffic(st, 100, 1)
    early = st.check_gates("risk/2", "production")
    assert not early.passed and "not enough data to decide" in early.gates[0].reason
    traffic(st, 900, 2)
    run = st.advance("risk/2", "production")
    assert run.status == "done", run.error
    evidence = run.gates[0].evidence
    assert evidence["significant"] is True and evidence["estimate_b"] > 0.9 > 0.6 > evidence["estimate_a"]
    assert evidence["n_a"] >= 150 and evidence["n_b"] >= 150
    assert st.get_version("risk@production").version == 2


def test_the_gate_on_plain_numbers() -> None:
    gate = Gate(challenger=ChallengerGate(deployment="d", metric="accuracy", min_samples=50))
    name = gates.label(gate)
    eighty, sixty = [1.0] * 320 + [0.0] * 80, [1.0] * 240 + [0.0] * 160
    same = gates.ArmsFact(1, eighty, eighty)
    worse = gates.ArmsFact(1, eighty, sixty)
    facts = gates.Facts(now=pd.Timestamp.now(tz="UTC").to_pydatetime(), metrics={}, provenance={})
    assert gates.evaluate(gate, {}, facts.__class__(**{**facts.__dict__, "arms": {name: same}})).passed  # not worse
    result = gates.evaluate(gate, {}, facts.__class__(**{**facts.__dict__, "arms": {name: worse}}))
    assert not result.passed and result.evidence["p_value"] < 0.05 and "significant" in result.reason
    better = Gate(challenger=ChallengerGate(deployment="d", metric="accuracy", min_samples=50, require="better"))
    assert not gates.evaluate(
        better, {}, facts.__class__(**{**facts.__dict__, "arms": {gates.label(better): same}})
    ).passed
