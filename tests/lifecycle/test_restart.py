"""Restart safety: a process killed in the middle of a transition leaves a run that the next process
resumes, with every effect exactly once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelsteward import LocalSteward
from modelsteward.settings import Settings

DEFINITION = """\
name: promote-only
stages:
  - name: candidate
  - name: production
    single: true
    replaced_to: retired
  - name: retired
transitions:
  - name: promote
    from: candidate
    to: production
    actions:
      - deploy: {deployment: risk, role: canary, weight: 0.1}
      - promote: {deployment: risk}
models: [risk]
"""

# The child registers two versions, applies the life cycle and asks to promote version 2; it dies
# (os._exit, as kill -9 would) at the named moment of the second action.
CHILD = """
import os, sys
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from modelsteward import LocalSteward
from modelsteward.lifecycle import actions
from modelsteward.settings import Settings

moment = sys.argv[2]
st = LocalSteward(settings=Settings(data_dir=sys.argv[1]), actor="dana")
X = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) % 7})
m = LogisticRegression().fit(X, X["b"] > 3)
for _ in range(2):
    st.register_model("risk", m, input_example=X.head())
st.set_alias("risk", "production", 1)
st.deploy("risk", "risk@production")
st.apply_lifecycle(sys.argv[3])
real = actions.perform

def dying(ctx, action, **kw):
    if action.kind == "promote" and moment == "before":
        os._exit(137)
    out = real(ctx, action, **kw)
    if action.kind == "promote" and moment == "after":
        os._exit(137)
    return out

actions.perform = dying
st.advance("risk/2", "production")
print("not reached")
"""


@pytest.mark.parametrize("moment", ["before", "after"])
def test_a_run_killed_mid_action_resumes_and_acts_exactly_once(tmp_path: Path, moment: str) -> None:
    data = tmp_path / "data"
    definition = tmp_path / "lifecycle.yaml"
    definition.write_text(DEFINITION)
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(data), moment, str(definition)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 137, child.stderr
    with LocalSteward(settings=Settings(data_dir=data), actor="ops") as st:
        (run,) = st.lifecycle_runs(model="risk")
        assert run.status == "acting"
        assert [(s.name, s.status) for s in run.steps] == [
            ("action[0]:deploy", "done"),
            ("action[1]:promote", "started"),
        ]
        assert st.lifecycle_tick(datetime.now(UTC) + timedelta(minutes=1))["resumed"] == 0  # not stale yet
        assert st.lifecycle_tick(datetime.now(UTC) + timedelta(minutes=10))["resumed"] == 1
        done = st.get_lifecycle_run(run.id)
        assert done.status == "done" and [s.status for s in done.steps] == ["done", "done"]
        assert st.get_version("risk@production").version == 2
        spec = st.get_deployment("risk").spec
        assert spec.champion == "risk@production" and spec.challengers == {}
        events = [e.action for e in st.list_events(model="risk", limit=500)]
        assert events.count("alias.set") == 2  # v1 by hand, v2 by the promotion: once, whatever the moment
        assert events.count("lifecycle.advanced") == 1
        deploys = [e for e in st.list_events(limit=500) if e.action == "deployment.deployed"]
        assert len(deploys) == 3  # created, canary added, promoted: nothing twice
        positions = {p.version: p.stage for p in st.lifecycle_status("risk").positions}
        assert positions == {1: "retired", 2: "production"}
