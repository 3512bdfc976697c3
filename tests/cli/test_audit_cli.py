"""`steward audit verify|export` on an embedded data directory and against a server, with tampering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from modelsteward.cli.main import app
from modelsteward.local_steward import LocalSteward
from modelsteward.settings import Settings
from tests.conftest import LiveServer

runner = CliRunner()
SET_ACTOR_ACTION = sa.text("UPDATE events SET actor = :actor, action = :action WHERE seq = :seq")


def _history(root: Path, numeric_model: Any) -> None:
    model, X = numeric_model
    with LocalSteward(settings=Settings(data_dir=root), actor="ann") as st:
        st.register_model("risk", model, input_example=X.head())
        st.register_model("risk", model, input_example=X.head())
        st.set_alias("risk", "production", 1)
        st.set_alias("risk", "production", 2)


def test_verify_and_export_then_catch_an_edit(tmp_path: Path, numeric_model: Any) -> None:
    _history(tmp_path, numeric_model)
    ok = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert ok.exit_code == 0 and "the audit trail holds" in ok.output
    out = tmp_path / "trail.jsonl"
    exported = runner.invoke(app, ["audit", "export", "--out", str(out), "--data-dir", str(tmp_path)])
    assert exported.exit_code == 0, exported.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["action"] for e in events if e["action"] == "alias.set"] == ["alias.set", "alias.set"]
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:], strict=False))
    later = runner.invoke(app, ["audit", "export", "--after", "2", "--data-dir", str(tmp_path)])
    assert [json.loads(line)["seq"] for line in later.output.splitlines()][0] == 3

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'steward.db'}")
    with engine.begin() as conn:  # someone moves the alias's history by hand
        conn.execute(sa.text("UPDATE events SET actor = 'mallory' WHERE action = 'alias.set' AND version = 1"))
    engine.dispose()
    seq = next(e["seq"] for e in events if e["action"] == "alias.set")
    broken = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert broken.exit_code == 1 and f"broken at event {seq}" in broken.output and "was changed" in broken.output


def test_a_deleted_or_reordered_event_is_found_and_the_server_says_so(tmp_path: Path, numeric_model: Any) -> None:
    _history(tmp_path, numeric_model)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'steward.db'}")
    with engine.begin() as conn:  # swap the content of two events, keeping their numbers
        a, b = conn.execute(sa.text("SELECT seq, actor, action FROM events WHERE seq IN (2, 3) ORDER BY seq")).all()
        swap = [
            {"seq": a.seq, "actor": b.actor, "action": b.action},
            {"seq": b.seq, "actor": a.actor, "action": a.action},
        ]
        conn.execute(SET_ACTOR_ACTION, swap)
    with LiveServer(Settings(data_dir=tmp_path)) as server:
        result = runner.invoke(app, ["audit", "verify", "--json", "--url", server.url])
        check = json.loads(result.output)
        assert result.exit_code == 1 and check["ok"] is False and check["first_broken"] == 2
    with engine.begin() as conn:  # put them back, then remove the newest event
        back = [{"seq": r.seq, "actor": r.actor, "action": r.action} for r in (a, b)]
        conn.execute(SET_ACTOR_ACTION, back)
        newest = conn.execute(sa.text("SELECT max(seq) FROM events")).scalar()
        conn.execute(sa.text("DELETE FROM events WHERE seq = :seq"), {"seq": newest})
    engine.dispose()
    with LocalSteward(settings=Settings(data_dir=tmp_path)) as st:
        check = st.verify_audit()
    assert not check.ok and check.first_broken == newest and check.events == newest - 1
    assert f"the trail ends at event {newest - 1}, but {newest} were written" in check.message
