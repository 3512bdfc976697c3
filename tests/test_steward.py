"""The SDK's common path, run against both bodies of the facade: embedded and remote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelsteward import (
    Conflict,
    InvalidArgument,
    LocalSteward,
    NotFound,
    SchemaMismatch,
    Steward,
    UnknownKind,
)


def test_steward_picks_its_body_from_the_arguments(tmp_path: Path) -> None:
    st = Steward(data_dir=tmp_path)
    assert isinstance(st, LocalSteward)
    st.close()
    from modelsteward.client.remote import RemoteSteward

    remote = Steward(url="http://127.0.0.1:1")
    assert isinstance(remote, RemoteSteward)
    remote.close()


def test_register_load_and_predict_match_the_estimator(steward, numeric_model) -> None:
    model, X = numeric_model
    v = steward.register_model(
        "credit-risk",
        model,
        kind="sklearn",
        input_example=X.head(),
        training_data=X,
        metrics={"auc": 0.81},
        tags={"team": "risk"},
    )
    assert (v.name, v.version, v.kind) == ("credit-risk", 1, "sklearn")
    assert v.signature.input_names == ["income", "debt_to_income", "age"]
    assert v.signature.output_names == ["prediction", "proba_0", "proba_1"]
    assert v.metrics == {"auc": 0.81}
    assert v.requirements.packages["scikit-learn"]
    assert v.datasets[0].role == "training" and v.datasets[0].row_count == len(X)

    steward.set_alias("credit-risk", "production", v.version)
    loaded = steward.load_model("credit-risk@production")
    np.testing.assert_array_equal(loaded.predict(X)["prediction"].to_numpy(), model.predict(X))
    np.testing.assert_allclose(loaded.predict(X)["proba_1"].to_numpy(), model.predict_proba(X)[:, 1])

    served = steward.predict("credit-risk@production", X.head(20))
    np.testing.assert_array_equal(served["prediction"].to_numpy(), model.predict(X.head(20)))
    assert list(served.index) == list(X.head(20).index)

    model_record = steward.get_model("credit-risk")
    assert model_record.tags == {"team": "risk"}
    assert model_record.aliases == {"production": 1}
    assert model_record.latest_version == 1


def test_kind_is_inferred_and_versions_count_up(steward, numeric_model) -> None:
    model, X = numeric_model
    first = steward.register_model("scorer", model, input_example=X.head())
    second = steward.register_model("scorer", model, input_example=X.head(), metrics={"auc": 0.9})
    assert first.kind == "sklearn"
    assert (first.version, second.version) == (1, 2)
    assert steward.get_version("scorer").version == 2
    assert steward.get_version("scorer/1").metrics == {}
    assert [v.version for v in steward.list_versions("scorer")] == [2, 1]


def test_aliases_move_and_resolve(steward, numeric_model) -> None:
    model, X = numeric_model
    for _ in range(3):
        steward.register_model("m", model, input_example=X.head())
    steward.set_alias("m", "production", 1)
    steward.set_alias("m", "challenger", 3)
    assert steward.get_version("m@production").version == 1
    steward.set_alias("m", "production", 2, expected_version=1)
    assert steward.get_version("m@production").version == 2
    assert steward.get_version("m/2").aliases == ["production"]
    with pytest.raises(Conflict):
        steward.set_alias("m", "production", 3, expected_version=1)
    assert {a.alias: a.version for a in steward.list_aliases("m")} == {"challenger": 3, "production": 2}
    steward.delete_alias("m", "challenger")
    with pytest.raises(NotFound, match="no alias 'challenger'"):
        steward.get_version("m@challenger")


def test_catalog_search_filters(steward, numeric_model) -> None:
    model, X = numeric_model
    steward.register_model("alpha", model, input_example=X.head(), owner="ann", business_unit="Retail Credit")
    steward.register_model("beta", model, input_example=X.head(), owner="bob", risk_tier="high", tags={"team": "b"})
    steward.register_model("gamma", lambda df: df["age"] * 2, kind="python", input_example=X.head())
    assert [m.name for m in steward.list_models()] == ["alpha", "beta", "gamma"]
    assert [m.name for m in steward.list_models(kind="python")] == ["gamma"]
    assert [m.name for m in steward.list_models(owner="bob")] == ["beta"]
    assert [m.name for m in steward.list_models(risk_tier="high")] == ["beta"]
    assert [m.name for m in steward.list_models(tags={"team": "b"})] == ["beta"]
    assert [m.name for m in steward.list_models(query="retail")] == ["alpha"]
    page = steward.search_models(limit=2, offset=1)
    assert page.total == 3 and [m.name for m in page.items] == ["beta", "gamma"]
    assert len(steward.list_versions()) == 3


def test_update_model_metadata(steward, numeric_model) -> None:
    model, X = numeric_model
    steward.register_model("m", model, input_example=X.head())
    updated = steward.update_model(
        "m",
        owner="head of retail credit",
        kpis=["approval_rate", {"name": "default_rate", "direction": "decrease"}],
    )
    assert updated.owner == "head of retail credit"
    assert [k.name for k in updated.kpis] == ["approval_rate", "default_rate"]
    with pytest.raises(InvalidArgument, match="risk_tier"):
        steward.update_model("m", risk_tier="extreme")


def test_lineage_and_dataset_fingerprint(steward, numeric_model) -> None:
    model, X = numeric_model
    v = steward.register_model("m", model, training_data=X, datasets={"test": X.tail(50)})
    lineage = steward.get_lineage("m/1")
    assert {e.relation for e in lineage.upstream} == {"training_data", "test_data"}
    training = next(d for d in v.datasets if d.role == "training")
    dataset = steward.get_dataset(training.content_hash)
    assert dataset.fingerprint.row_count == len(X)
    income = dataset.fingerprint.column("income")
    assert income.mean == pytest.approx(X["income"].mean())
    assert income.null_count == 0


def test_bad_input_is_refused_clearly(steward, numeric_model) -> None:
    model, X = numeric_model
    with pytest.raises(InvalidArgument, match="invalid name"):
        steward.register_model("bad name!", model, input_example=X.head())
    with pytest.raises(UnknownKind, match="unknown model kind 'tensorflow'"):
        steward.register_model("m", model, kind="tensorflow", input_example=X.head())
    steward.register_model("m", model, input_example=X.head())
    with pytest.raises(NotFound, match="no version 7"):
        steward.set_alias("m", "production", 7)
    with pytest.raises(NotFound, match="no model named 'ghost'"):
        steward.get_version("ghost@production")
    with pytest.raises(SchemaMismatch) as info:
        steward.predict("m", X.drop(columns=["age"]))
    assert info.value.details["column"] == "age"
    with pytest.raises(SchemaMismatch, match="expected number"):
        steward.predict("m", X.assign(income="lots"))
    # nothing half-registered: the failed registrations left exactly one version
    assert [v.version for v in steward.list_versions("m")] == [1]


def test_events_record_every_change(steward, numeric_model) -> None:
    model, X = numeric_model
    steward.register_model("m", model, input_example=X.head())
    steward.set_alias("m", "production", 1)
    actions = [e.action for e in steward.list_events(model="m")]
    assert actions == ["alias.set", "version.registered"]


def test_score_file_in_chunks(steward, numeric_model, tmp_path: Path) -> None:
    model, X = numeric_model
    steward.register_model("m", model, input_example=X.head())
    source = tmp_path / "in.parquet"
    X.assign(applicant_id=range(len(X))).to_parquet(source)
    seen: list[int] = []
    rows = steward.score_file(
        "m", source, tmp_path / "out.parquet", chunk_size=64, progress=lambda d, t: seen.append(d)
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert rows == len(X) == len(out)
    assert seen[-1] == len(X) and len(seen) == -(-len(X) // 64)
    assert list(out["applicant_id"]) == list(range(len(X)))
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(X))


def test_deploy_serve_and_roll_back(steward, numeric_model) -> None:
    model, X = numeric_model
    for _ in range(2):
        steward.register_model("risk", model, input_example=X.head())
    steward.set_alias("risk", "production", 1)
    deployment = steward.deploy("risk", "risk@production", challengers={"risk/2": 0.5}, sticky_key="customer_id")
    assert {a.role: a.version for a in deployment.arms} == {"champion": "risk/1", "challenger": "risk/2"}
    served = steward.serve("risk", X.head(20).assign(customer_id=range(20)), request_id="sdk")
    assert served.prediction_ids[0] == "sdk-0" and len(served.outputs) == 20
    np.testing.assert_array_equal(served.outputs["prediction"].to_numpy(), model.predict(X.head(20)))
    steward.set_traffic("risk", {"risk/2": 0.25})
    assert steward.rollback("risk").spec.challengers == {"risk/2": 0.5}
    assert [d.name for d in steward.list_deployments(status="active")] == ["risk"]
    assert steward.get_deployment("risk").revision == 3
    assert steward.undeploy("risk").status == "retired"


def test_a_canary_step_changes_one_share_and_keeps_the_others(steward, numeric_model) -> None:
    model, X = numeric_model
    for _ in range(3):
        steward.register_model("risk", model, input_example=X.head())
    steward.deploy("risk", "risk/1", challengers={"risk/2": 0.1, "risk/3": 0.05})
    stepped = steward.set_share("risk", "risk/3", 0.25)
    assert stepped.spec.challengers == {"risk/2": 0.1, "risk/3": 0.25}
    with pytest.raises(InvalidArgument):
        steward.set_share("risk", "risk/3", 0.95)  # with risk/2's 0.1 the shares would pass 1
