"""Inference pipelines: definitions checked with lines, bound to the demo models, runs equal to the steps by hand."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from modelsteward import Steward
from modelsteward.demo.bureau import write_bureau
from modelsteward.demo.data import FEATURES, applicants
from modelsteward.demo.seed import definition, seed_demo
from modelsteward.errors import InvalidArgument, InvalidDefinition, SchemaMismatch, StoreUnavailable
from modelsteward.kinds.loaded import LoadedModel
from modelsteward.serving.pipeline import Pipeline, PipelineSpec, bind, pipeline_context

REQUEST_DROPS = ["credit_history_months", "num_open_accounts", "gender", "age_group", "defaulted_90d"]
POLICY_INPUTS = ["debt_to_income", "risk_score", "loan_amount", "income", "credit_history_months"]
LIMIT_INPUTS = ["risk_score", "loan_amount", "income", "region"]


class Doubler:
    """A python-kind feature transform that fails on negative incomes."""

    input_schema = {"income": "number"}

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        if (frame["income"] < 0).any():
            raise ValueError("income must not be negative")
        return pd.DataFrame({"doubled": frame["income"] * 2}, index=frame.index)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One seeded demo steward for the module: the models, the bureau table and the applicants."""
    data_dir = tmp_path_factory.mktemp("pipeline-data")
    st = Steward(data_dir=data_dir)
    seed_demo(st, rows=2000)
    people = applicants(400, seed=11)
    url = write_bureau(data_dir, people)
    doubler = st.register_model("doubler", Doubler(), kind="python", input_example=pd.DataFrame({"income": [1.0, 2.0]}))
    st.set_alias("doubler", "production", doubler.version)
    yield {"st": st, "data_dir": data_dir, "people": people, "url": url, "context": pipeline_context(data_dir)}
    st.close()


def spec_of(text: str, source: str = "test.yaml") -> PipelineSpec:
    return PipelineSpec.from_yaml(textwrap.dedent(text), source=source)


def request_of(people: pd.DataFrame, n: int = 60) -> pd.DataFrame:
    request = people.drop(columns=REQUEST_DROPS).head(n).copy()
    request.index = pd.Index([f"app-{i}" for i in range(len(request))], name="request_row")
    return request


def no_models(ref: str) -> LoadedModel:
    raise AssertionError(f"this pipeline has no model step, yet {ref} was resolved")


def marked_line(text: str) -> int:
    return next(i for i, line in enumerate(textwrap.dedent(text).splitlines(), 1) if "#<" in line)


# -- the credit-decision pipeline ------------------------------------------------------------------


def test_credit_decision_equals_the_steps_run_by_hand(world: dict[str, Any]) -> None:
    st, people = world["st"], world["people"]
    spec = PipelineSpec.from_file(definition("credit_decision.yaml"))
    request = request_of(people)
    with bind(spec, st.load_model, context=world["context"]) as pipeline:
        result = pipeline.run(request)
        assert pipeline.input_columns == [
            "applicant_id",
            "age",
            "income",
            "employment_years",
            "debt_to_income",
            "loan_amount",
            "loan_purpose",
            "region",
            "housing",
        ]
        assert pipeline.signature.input_names == pipeline.input_columns
        assert pipeline.signature.inputs[0].type == "integer"  # the bureau table's key type
        assert pipeline.signature.output_names == ["decision", "reason", "rule", "risk_score", "credit_limit"]
        assert {c.name: c.nullable for c in pipeline.signature.outputs}["credit_limit"] is True

    # By hand: the lookup as a pandas merge, then each model on the same inputs, the filter applied by hand.
    bureau = pd.read_sql("SELECT * FROM applicant_history", sa.create_engine(world["url"]))
    merged = request.reset_index().merge(bureau, on="applicant_id", how="left").set_index("request_row")
    score = st.predict("credit-risk@production", merged[FEATURES])
    merged["risk_score"] = score["proba_1"].to_numpy()
    policy = st.predict("credit-policy@production", merged[POLICY_INPUTS])
    approved = policy["decision"].to_numpy() == "approve"
    assert 0 < approved.sum() < len(request)  # the filter matters in this sample
    limits = st.predict("limit-allocation@production", merged.loc[approved, LIMIT_INPUTS])
    credit_limit = np.full(len(request), np.nan)
    credit_limit[approved] = limits["limit"].to_numpy()
    expected = pd.DataFrame(
        {
            "decision": policy["decision"].to_numpy(),
            "reason": policy["reason"].to_numpy(),
            "rule": policy["rule"].to_numpy(),
            "risk_score": merged["risk_score"].to_numpy(),
            "credit_limit": credit_limit,
        },
        index=request.index,
    )
    pd.testing.assert_frame_equal(result.outputs, expected, check_dtype=False)
    assert result.outputs.index.equals(request.index)

    steps = {s.name: s for s in result.steps}
    assert [(s.name, s.kind) for s in result.steps] == [
        ("history", "lookup"),
        ("score", "model"),
        ("policy", "model"),
        ("limits", "model"),
    ]
    assert result.versions == ["credit-risk/2", "credit-policy/1", "limit-allocation/1"]
    assert steps["score"].ref == "credit-risk@production" and steps["history"].version is None
    assert list(steps["history"].inputs.columns) == ["applicant_id"]
    pd.testing.assert_series_equal(
        steps["history"].outputs["credit_history_months"],
        merged["credit_history_months"],
        check_dtype=False,
        check_names=False,
    )
    assert list(steps["score"].inputs.columns) == [
        c.name for c in st.load_model("credit-risk@production").signature.inputs
    ]
    assert list(steps["score"].outputs.columns) == ["risk_score"]
    assert steps["limits"].rows.equals(request.index[approved])
    assert list(steps["limits"].inputs.columns) == LIMIT_INPUTS
    assert list(steps["limits"].outputs.columns) == ["credit_limit"]
    assert len(steps["limits"].outputs) == approved.sum()
    assert all(s.latency_ms >= 0 for s in result.steps)
    assert {"applicant_id", "credit_history_months", "risk_score", "decision", "credit_limit"} <= set(result.frame)


def test_where_that_selects_nothing_skips_the_model(world: dict[str, Any]) -> None:
    st = world["st"]
    spec = spec_of(
        """
        name: nothing-approved
        steps:
          - {name: limits, model: limit-allocation@production, where: "risk_score > 2", outputs: {limit: credit_limit}}
        """
    )
    request = pd.DataFrame({"risk_score": [0.1, 0.2], "loan_amount": [1000.0, 2000.0], "income": [5e4, 6e4]})
    request["region"] = ["north", "south"]
    with bind(spec, st.load_model) as pipeline:
        result = pipeline.run(request)
    assert result.outputs["credit_limit"].isna().all()
    assert len(result.steps[0].rows) == 0 and len(result.steps[0].outputs) == 0
    empty = pipeline.run(request.head(0))
    assert list(empty.outputs.columns) == ["credit_limit"] and len(empty.outputs) == 0


# -- lookups -------------------------------------------------------------------------------------------


def history_spec(on_missing: str = "error", extra: str = "") -> PipelineSpec:
    return spec_of(
        f"""
        name: history-only
        steps:
          - name: history
            lookup:
              url: "sqlite:///${{DATA_DIR}}/demo/bureau.db"
              table: applicant_history
              key: applicant_id
              columns: [credit_history_months, num_open_accounts]
              on_missing: {on_missing}
              {extra}
        """
    )


def test_lookup_missing_key_is_an_error_naming_the_keys(world: dict[str, Any]) -> None:
    request = pd.DataFrame({"applicant_id": [1, 999_001, 2, 999_002, 999_001]})
    with bind(history_spec("error"), no_models, context=world["context"]) as pipeline:
        with pytest.raises(InvalidArgument) as info:
            pipeline.run(request)
    message = str(info.value)
    assert message.startswith("step 'history': ")
    assert "999001, 999002" in message and "(3 of 5 rows)" in message
    assert info.value.details["keys"] == [999_001, 999_002]
    assert info.value.details["step"] == "history" and info.value.details["column"] == "applicant_id"


def test_lookup_on_missing_null_gives_nulls(world: dict[str, Any]) -> None:
    people = world["people"].set_index("applicant_id")
    request = pd.DataFrame({"applicant_id": [3, 999_001, 4, None]}, index=[10, 11, 12, 13])
    with bind(history_spec("null"), no_models, context=world["context"]) as pipeline:
        result = pipeline.run(request)
        assert pipeline.signature.inputs[0].nullable is True
    out = result.outputs
    assert list(out.columns) == ["credit_history_months", "num_open_accounts"]
    assert out.loc[10, "credit_history_months"] == people.loc[3, "credit_history_months"]
    assert out.loc[12, "num_open_accounts"] == people.loc[4, "num_open_accounts"]
    assert out.loc[[11, 13]].isna().all().all()


def test_lookup_in_batches_with_a_differently_named_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    engine = sa.create_engine(url)
    pd.DataFrame({"id": np.arange(1, 21), "segment": [f"s{i % 3}" for i in range(1, 21)]}).to_sql(
        "segments", engine, index=False
    )
    engine.dispose()
    spec = PipelineSpec.from_dict(
        {
            "name": "segments",
            "steps": [
                {
                    "name": "seg",
                    "lookup": {
                        "url": "sqlite:///${DIR}/scores.db",
                        "table": "segments",
                        "key": "customer",
                        "table_key": "id",
                        "columns": ["segment"],
                        "batch_size": 3,
                    },
                }
            ],
        }
    )
    keys = [20, 1.0, 7, 7, 13, 2, 19, 5, 11]  # floats as a JSON decoder may give them; repeats
    with bind(spec, no_models, context={"DIR": str(tmp_path)}) as pipeline:
        result = pipeline.run(pd.DataFrame({"customer": keys}))
    assert result.outputs["segment"].tolist() == [f"s{int(k) % 3}" for k in keys]


def test_lookup_database_unreachable_is_store_unavailable(tmp_path: Path) -> None:
    spec = PipelineSpec.from_dict(
        {
            "name": "down",
            "steps": [
                {
                    "name": "history",
                    "lookup": {
                        "url": f"sqlite:///{tmp_path}/no/such/dir/x.db",
                        "table": "t",
                        "key": "k",
                        "columns": ["v"],
                    },
                }
            ],
        }
    )
    with pytest.raises(StoreUnavailable, match="step 'history'.*cannot be reached"):
        bind(spec, no_models)
    with bind(spec, no_models, check_lookups=False) as pipeline:  # nothing connects until the first run
        with pytest.raises(StoreUnavailable, match="^step 'history': the lookup database") as info:
            pipeline.run(pd.DataFrame({"k": [1]}))
    assert info.value.details["step"] == "history"


def test_lookup_table_and_columns_are_checked_at_bind(world: dict[str, Any]) -> None:
    text = """
        name: bad-table
        steps:
          - name: history
            lookup:  #<
              url: "sqlite:///${DATA_DIR}/demo/bureau.db"
              table: {table}
              key: applicant_id
              columns: [credit_history_months, {column}]
        """
    bad_table = spec_of(text.replace("{table}", "no_such_table").replace("{column}", "num_open_accounts"))
    with pytest.raises(InvalidDefinition, match="no table 'no_such_table'") as info:
        bind(bad_table, no_models, context=world["context"])
    assert info.value.details["line"] == marked_line(text)
    bad_column = spec_of(text.replace("{table}", "applicant_history").replace("{column}", "shoe_size"))
    with pytest.raises(InvalidDefinition, match="no column 'shoe_size'"):
        bind(bad_column, no_models, context=world["context"])
    with pytest.raises(InvalidDefinition, match=r"\$\{DATA_DIR\}"):
        bind(bad_column, no_models, context={})


# -- assign, where, outputs, result ---------------------------------------------------------------------


def test_assign_computes_columns_in_order_and_where_leaves_nulls() -> None:
    spec = spec_of(
        """
        name: features
        inputs: {region: string}
        steps:
          - name: features
            assign:
              loan_to_income: "loan_amount / income"
              big: "loan_to_income > 0.5"
          - name: southern
            where: "region == 'south'"
            assign: {surcharge: "round(loan_amount * 0.01, 2)"}
        result: [loan_to_income, big, surcharge, region]
        """
    )
    request = pd.DataFrame(
        {
            "loan_amount": [30_000.0, 10_000.0, 5_000.0],
            "income": [50_000.0, 40_000.0, 0.0],
            "region": ["south", "north", "south"],
        }
    )
    with bind(spec, no_models) as pipeline:
        result = pipeline.run(request)
        assert pipeline.input_columns == ["region", "loan_amount", "income"]
        types = {c.name: c.type for c in pipeline.signature.inputs}
        assert types == {"region": "string", "loan_amount": "number", "income": "number"}
        assert {c.name: c.type for c in pipeline.signature.outputs}["big"] == "boolean"
    out = result.outputs
    assert out["loan_to_income"].iloc[:2].tolist() == [0.6, 0.25]
    assert np.isnan(out["loan_to_income"].iloc[2])  # division by zero is null, not infinity
    assert out["big"].tolist() == [True, False, False]
    assert out["surcharge"].iloc[0] == 300.0 and np.isnan(out["surcharge"].iloc[1]) and out["surcharge"].iloc[2] == 50.0
    southern = result.steps[1]
    assert southern.rows.tolist() == [0, 2] and list(southern.inputs.columns) == ["loan_amount"]


def test_unrenamed_outputs_that_clash_are_prefixed_with_the_step_name(world: dict[str, Any]) -> None:
    st = world["st"]
    spec = spec_of(
        """
        name: twice
        steps:
          - {name: policy, model: credit-policy@production}
          - {name: again, model: credit-policy@production}
          - {name: afford, model: affordability@production}
          - {name: double, model: doubler@production, outputs: [doubled]}
        """
    )
    request = world["people"].head(5).assign(risk_score=0.1)
    with bind(spec, st.load_model) as pipeline:
        result = pipeline.run(request)
    assert {"decision", "again_decision", "again_reason", "again_rule", "monthly_capacity", "affordable"} <= set(
        result.frame
    )
    assert result.frame["decision"].tolist() == result.frame["again_decision"].tolist()
    assert list(result.outputs.columns) == ["doubled"]  # default result: the last step's outputs
    assert result.outputs["doubled"].tolist() == (request["income"] * 2).tolist()
    affordability = st.load_model("affordability@production")
    expected = affordability.predict(request, allow_extra=True)
    assert result.frame["monthly_capacity"].tolist() == expected["monthly_capacity"].tolist()


def test_bind_time_checks_need_the_signatures(world: dict[str, Any]) -> None:
    st = world["st"]
    text = """
        name: collide
        steps:
          - {name: score, model: credit-risk@production, outputs: {proba_1: risk_score}}
          - name: rescore
            model: credit-risk@production
            outputs:
              proba_1: risk_score  #<
        """
    with pytest.raises(
        InvalidDefinition, match="output 'risk_score' collides with the output 'risk_score' of step 'score'"
    ) as info:
        bind(spec_of(text), st.load_model)
    assert info.value.details["line"] == marked_line(text)

    text = """
        name: no-such-output
        steps:
          - name: score
            model: credit-risk@production
            outputs:
              proba_2: risk  #<
        """
    with pytest.raises(
        InvalidDefinition, match=r"has no output 'proba_2' \(its outputs: prediction, proba_0, proba_1\)"
    ) as info:
        bind(spec_of(text), st.load_model)
    assert info.value.details["line"] == marked_line(text)

    text = """
        name: unknown-result
        steps:
          - {name: policy, model: credit-policy@production}
        result:
          - decision
          - approval  #<
        """
    with pytest.raises(InvalidDefinition, match="result column 'approval' is produced by no step") as info:
        bind(spec_of(text), st.load_model)
    assert info.value.details["line"] == marked_line(text)

    text = """
        name: wrong-type
        steps:
          - {name: features, assign: {risk_score: "'high'"}}
          - {name: policy, model: credit-policy@production}  #<
        """
    with pytest.raises(SchemaMismatch, match="column 'risk_score' is string .* reads it as number") as info:
        bind(spec_of(text), st.load_model)
    assert info.value.details["line"] == marked_line(text) and info.value.details["column"] == "risk_score"

    text = """
        name: text-arithmetic
        inputs: {region: string}
        steps:
          - name: features
            assign:
              half: "region / 2"  #<
        """
    with pytest.raises(InvalidDefinition, match="'/' needs numbers, got text") as info:
        bind(spec_of(text), no_models)
    assert info.value.details["line"] == marked_line(text)


def test_declared_inputs_pass_through_to_the_result(world: dict[str, Any]) -> None:
    spec = spec_of(
        """
        name: echo
        inputs: {applicant_id: integer}
        steps:
          - {name: score, model: credit-risk@production, outputs: {proba_1: risk_score}}
        result: [applicant_id, risk_score]
        """
    )
    request = request_of(world["people"], 5).assign(credit_history_months=24, num_open_accounts=2)
    with bind(spec, world["st"].load_model) as pipeline:
        result = pipeline.run(request)
    assert result.outputs["applicant_id"].tolist() == request["applicant_id"].tolist()
    assert pipeline.input_columns[0] == "applicant_id"


# -- definition errors name the line -------------------------------------------------------------------

BAD_DEFINITIONS = {
    "unknown key": (
        """
        name: p
        steps:
          - name: a
            assign: {x: "1"}
            colour: blue  #<
        """,
        "colour: Extra inputs are not permitted",
    ),
    "unknown top-level key": (
        """
        name: p
        stepz: []  #<
        steps:
          - {name: a, assign: {x: "1"}}
        """,
        "stepz: Extra inputs are not permitted",
    ),
    "duplicate step names": (
        """
        name: p
        steps:
          - {name: a, assign: {x: "1"}}
          - name: a  #<
            assign: {y: "2"}
        """,
        "duplicate step name 'a'",
    ),
    "two actions": (
        """
        name: p
        steps:
          - {name: a, assign: {x: "1"}}
          - name: b  #<
            assign: {y: "2"}
            model: credit-risk@production
        """,
        "exactly one of lookup, assign or model (found assign and model)",
    ),
    "no action": (
        """
        name: p
        steps:
          - name: b  #<
            description: does nothing
        """,
        "exactly one of lookup, assign or model",
    ),
    "bad expression": (
        """
        name: p
        steps:
          - name: a
            assign:
              x: "income.__class__"  #<
        """,
        "attribute access is not allowed",
    ),
    "bad where": (
        """
        name: p
        steps:
          - name: a
            assign: {x: "1"}
            where: "decision = 'approve'"  #<
        """,
        "invalid syntax",
    ),
    "renames collide in a step": (
        """
        name: p
        steps:
          - name: s
            model: credit-risk@production
            outputs:
              proba_0: p
              proba_1: p  #<
        """,
        "output 'p' collides with another output of step 's'",
    ),
    "output collides with an earlier output": (
        """
        name: p
        steps:
          - {name: a, assign: {x: "income * 2"}}
          - name: b
            assign:
              x: "income * 3"  #<
        """,
        "output 'x' collides with the output 'x' of step 'a'",
    ),
    "output collides with a request column read earlier": (
        """
        name: p
        steps:
          - {name: a, assign: {x: "income * 2"}}
          - name: b
            model: credit-risk@production
            outputs:
              proba_1: income  #<
        """,
        "output 'income' collides with the request column 'income' that step 'a' reads",
    ),
    "outputs on assign": (
        """
        name: p
        steps:
          - name: a
            assign: {x: "1"}
            outputs: {x: y}  #<
        """,
        "outputs does not apply to assign",
    ),
    "result names nothing": (
        """
        name: p
        steps:
          - {name: a, assign: {x: "income * 2"}}
        result:
          - x
          - y  #<
        """,
        "result column 'y' is produced by no step",
    ),
    "result twice": (
        """
        name: p
        steps:
          - {name: a, model: credit-risk@production}
        result:
          - proba_1
          - proba_1  #<
        """,
        "result column 'proba_1' is listed twice",
    ),
    "bad step name": (
        """
        name: p
        steps:
          - name: credit-score  #<
            assign: {x: "1"}
        """,
        "invalid step name 'credit-score'",
    ),
    "bad model reference": (
        """
        name: p
        steps:
          - name: a
            model: "credit risk@production"  #<
        """,
        "invalid",
    ),
    "lookup key fetched": (
        """
        name: p
        steps:
          - name: a
            lookup:
              url: sqlite://
              table: t
              key: id
              columns: [id, v]  #<
        """,
        "the key 'id' is not a column to fetch",
    ),
    "unused declared input": (
        """
        name: p
        inputs:
          region: string  #<
        steps:
          - {name: a, assign: {x: "income * 2"}}
        """,
        "the declared input 'region' is read by no step",
    ),
    "duplicate key": (
        """
        name: p
        steps:
          - name: a
            name: b  #<
            assign: {x: "1"}
        """,
        "duplicate key 'name'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DEFINITIONS))
def test_definition_errors_name_the_line(case: str) -> None:
    text, message = BAD_DEFINITIONS[case]
    with pytest.raises(InvalidDefinition) as info:
        spec_of(text, source="bad.yaml")
    assert message in str(info.value)
    assert info.value.details["line"] == marked_line(text)
    assert str(info.value).startswith(f"bad.yaml line {marked_line(text)}: ")


# -- failures at run time -----------------------------------------------------------------------------


def test_a_failing_model_step_is_named(world: dict[str, Any]) -> None:
    spec = spec_of(
        """
        name: fragile
        steps:
          - {name: features, assign: {net: "income - 1000"}}
          - {name: boom, model: doubler@production}
        """
    )
    with bind(spec, world["st"].load_model) as pipeline:
        assert pipeline.run(pd.DataFrame({"income": [5000.0]})).outputs["doubled"].tolist() == [10_000.0]
        with pytest.raises(ValueError, match="^step 'boom': income must not be negative") as info:
            pipeline.run(pd.DataFrame({"income": [-5.0]}))
    assert type(info.value) is ValueError
    assert info.value.args == ("step 'boom': income must not be negative",)


def test_input_mismatches_name_the_step_and_column(world: dict[str, Any]) -> None:
    spec = PipelineSpec.from_file(definition("credit_decision.yaml"))
    request = request_of(world["people"], 4)
    with bind(spec, world["st"].load_model, context=world["context"]) as pipeline:
        with pytest.raises(SchemaMismatch, match="^step 'score': the request lacks column\\(s\\) 'housing'") as info:
            pipeline.run(request.drop(columns=["housing"]))
        assert info.value.details["column"] == "housing"
        with pytest.raises(
            SchemaMismatch, match="^step 'score': input does not match the signature of credit-risk/2"
        ) as info:
            pipeline.run(request.assign(loan_purpose=1.5))
        assert info.value.details["column"] == "loan_purpose" and info.value.details["step"] == "score"


# -- SDK specs, storage and resolution -------------------------------------------------------------------


def test_a_dict_spec_works_like_the_yaml_one(world: dict[str, Any]) -> None:
    from_yaml = PipelineSpec.from_file(definition("credit_decision.yaml"))
    stored = json.loads(json.dumps(from_yaml.model_dump()))  # what the metadata database keeps
    from_dict = PipelineSpec.from_dict(stored)
    assert from_dict.model_dump() == from_yaml.model_dump() == PipelineSpec.model_validate(stored).model_dump()
    assert from_yaml.line(("steps", 3, "where")) == 32 and from_dict.line(("steps", 3, "where")) is None
    request = request_of(world["people"], 20)
    st = world["st"]
    with (
        bind(from_yaml, st.load_model, context=world["context"]) as a,
        bind(stored, st.load_model, context=world["context"]) as b,
    ):
        pd.testing.assert_frame_equal(a.run(request).outputs, b.run(request).outputs)

    broken = {**stored, "steps": [*stored["steps"], {"name": "x", "model": "m", "assign": {"y": "1"}}]}
    with pytest.raises(InvalidDefinition, match=r"steps\[4\]: .*exactly one of lookup, assign or model") as info:
        PipelineSpec.model_validate(broken)
    assert info.value.details["line"] is None and info.value.details["field"] == "steps[4]"


def test_bind_resolves_through_the_resolver_it_is_given(world: dict[str, Any]) -> None:
    st = world["st"]
    calls: list[str] = []

    def previous_for_production(ref: str) -> LoadedModel:
        # A gateway's cached resolver: here it answers production with the 'previous' version.
        calls.append(ref)
        return st.load_model(ref.replace("credit-risk@production", "credit-risk@previous"))

    spec = PipelineSpec.from_file(definition("credit_decision.yaml"))
    request = request_of(world["people"], 10)
    with bind(spec, previous_for_production, context=world["context"]) as pipeline:
        assert sorted(calls) == sorted(
            ["credit-risk@production", "credit-policy@production", "limit-allocation@production"]
        )
        assert pipeline.versions["score"] == "credit-risk/1"
        result = pipeline.run(request)
    assert len(calls) == 3  # running resolves nothing
    assert result.steps[1].version == "credit-risk/1" and result.steps[1].ref == "credit-risk@production"
    by_hand = st.predict(
        "credit-risk/1",
        request.merge(
            world["people"][["applicant_id", "credit_history_months", "num_open_accounts"]], on="applicant_id"
        )[FEATURES],
    )
    assert result.outputs["risk_score"].tolist() == by_hand["proba_1"].tolist()

    twice = spec_of(
        """
        name: shared
        steps:
          - {name: a, model: credit-policy@production}
          - {name: b, model: credit-policy@production}
        """
    )
    calls.clear()
    with bind(twice, previous_for_production):
        assert calls == ["credit-policy@production"]  # one resolution per distinct reference


def test_an_alias_move_is_followed_on_rebind(world: dict[str, Any]) -> None:
    st = world["st"]
    spec = spec_of(
        """
        name: score-only
        steps:
          - {name: score, model: credit-risk@production, outputs: {proba_1: risk_score}}
        """
    )
    request = request_of(world["people"], 3).assign(credit_history_months=12, num_open_accounts=1)
    st.set_alias("credit-risk", "production", 1)
    try:
        with bind(spec, st.load_model) as pipeline:
            assert pipeline.run(request).versions == ["credit-risk/1"]
    finally:
        st.set_alias("credit-risk", "production", 2)
    with bind(spec, st.load_model) as pipeline:
        assert pipeline.run(request).versions == ["credit-risk/2"]


def test_pipeline_is_importable_from_the_module(world: dict[str, Any]) -> None:
    spec = history_spec("null")
    pipeline = bind(spec, no_models, context=world["context"])
    assert isinstance(pipeline, Pipeline) and "history:lookup" in repr(pipeline)
    pipeline.close()
