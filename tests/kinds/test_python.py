"""The python kind: classes and functions, code carried by value, signatures declared or inferred."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from modelsteward.errors import InvalidArgument, InvalidArtifact
from modelsteward.kinds.base import SavedModel
from modelsteward.kinds.python import PythonKind
from modelsteward.testing import check_kind

KIND = PythonKind()


class Affordability:
    input_schema = {"income": "number", "debts": "number"}

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        capacity = df["income"] / 12 * 0.35 - df["debts"]
        return pd.DataFrame({"monthly_capacity": capacity.clip(lower=0)})


def frame() -> pd.DataFrame:
    return pd.DataFrame({"income": [60_000.0, 24_000.0], "debts": [500.0, 900.0]})


def test_class_with_declared_schema() -> None:
    out = check_kind(KIND, Affordability(), frame())
    assert out["monthly_capacity"].tolist() == [1250.0, 0.0]
    assert KIND.signature(Affordability(), None).input_names == ["income", "debts"]


def test_plain_function_needs_an_example() -> None:
    def double(df):
        return df["income"] * 2

    out = check_kind(KIND, double, frame())
    assert out["income"].tolist() == [120_000.0, 48_000.0]
    with pytest.raises(InvalidArgument, match="input_example"):
        KIND.signature(double, None)


def test_detect_refuses_non_models() -> None:
    assert not KIND.detect("path.yaml")
    assert not KIND.detect(Affordability)  # the class, not an instance
    with pytest.raises(InvalidArtifact):
        KIND.save(42)
    with pytest.raises(InvalidArtifact):
        KIND.load(SavedModel(data=b"junk", format="cloudpickle"))


def test_user_code_travels_by_value(tmp_path: Path) -> None:
    # A model defined in a user's module must load where that module does not exist.
    module = tmp_path / "user_models.py"
    module.write_text(
        textwrap.dedent(
            """
            class Scorer:
                def predict(self, df):
                    return df["x"] + 1
            """
        )
    )
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import user_models
        from modelsteward.kinds.python import PythonKind
        sys.stdout.buffer.write(PythonKind().save(user_models.Scorer()).data)
        """
    )
    data = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True).stdout
    module.unlink()
    native = KIND.load(SavedModel(data=data, format="cloudpickle"))
    assert native.predict(pd.DataFrame({"x": [1, 2]})).tolist() == [2, 3]
