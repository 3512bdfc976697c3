"""Comments on models and versions, on both bodies of the facade: stored with their author, in the trail, listed
newest first; a model's history is readable with the model; bad comments are refused."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from modelsteward import InvalidArgument, NotFound


def test_comments_join_the_models_timeline_and_the_trail(steward: Any, numeric_model: Any) -> None:
    st = steward
    model, X = numeric_model
    st.register_model("risk", model, input_example=X.head(), capture_git=False)
    first = st.add_comment("risk", "the approval rate of applicants under 25 looks low")
    second = st.add_comment("risk", "confirmed on the Q3 sample: equalized odds gap 0.14", version=1)
    assert second.version == 1 and second.author == first.author and second.id > first.id
    assert [c.id for c in st.list_comments("risk")] == [second.id, first.id]
    assert [c.id for c in st.list_comments("risk", version=1)] == [second.id]
    history = st.model_history("risk")
    added = [e for e in history if e.action == "comment.added"]
    assert [e.details["comment"] for e in added] == [second.id, first.id] and added[0].version == 1
    assert history[-1].action == "version.registered"

    with pytest.raises(InvalidArgument, match="needs some text"):
        st.add_comment("risk", "   ")
    with pytest.raises(NotFound):
        st.add_comment("risk", "about a version that does not exist", version=9)
    with pytest.raises(NotFound):
        st.add_comment("nope", "about a model that does not exist")


def test_the_cli_adds_and_lists_comments(tmp_path: Any, numeric_model: Any) -> None:
    from modelsteward import Steward
    from modelsteward.cli.main import app

    model, X = numeric_model
    with Steward(tmp_path / "data") as st:
        st.register_model("risk", model, input_example=X.head(), capture_git=False)
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    added = runner.invoke(app, ["comments", "add", "risk", "looks good to me", "--version", "1", *data])
    assert added.exit_code == 0 and "comment 1 on risk/1" in added.output
    listed = runner.invoke(app, ["comments", "list", "risk", "--json", *data])
    assert listed.exit_code == 0 and '"looks good to me"' in listed.output
    bad = runner.invoke(app, ["comments", "add", "nope", "hello", *data])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
