"""The ``sklearn`` kind: any estimator with the scikit-learn API (also XGBoost and LightGBM)."""

from __future__ import annotations

import contextlib
import copy
import pickle
import threading
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from modelsteward.domain.records import ColumnSpec, Signature
from modelsteward.errors import InvalidArgument, InvalidArtifact, require
from modelsteward.kinds.base import SavedModel, check_pickle_stream, columns_frame, outputs_to_frame
from modelsteward.stats.schema import infer_columns

_SKOPS_SAFE_PREFIXES = ("sklearn.", "numpy.", "scipy.")


def _proba_name(label: Any) -> str:
    return f"proba_{label}"


class SklearnKind:
    """Saved with skops when skops can round-trip the estimator; otherwise with pickle, which is
    only ever loaded after the artifact store has checked the bytes against the registered sha256.

    Outputs: ``prediction`` and, for classifiers, one ``proba_<class>`` column per class.
    """

    name: ClassVar[str] = "sklearn"
    packages: ClassVar[tuple[str, ...]] = ("scikit-learn", "numpy", "scipy", "skops")

    def detect(self, obj: Any) -> bool:
        return (
            not isinstance(obj, type)
            and callable(getattr(obj, "fit", None))
            and callable(getattr(obj, "predict", None))
            and callable(getattr(obj, "get_params", None))
        )

    def save(self, obj: Any) -> SavedModel:
        if not self.detect(obj):
            raise InvalidArtifact(
                f"a {type(obj).__name__} is not a scikit-learn estimator (it needs fit, predict and get_params)",
                details={"kind": self.name},
            )
        _check_fitted(obj)
        metadata = {"classes": _classes(obj)}
        try:
            sio = require("skops.io", "sklearn")
            data = sio.dumps(obj)
            trusted = sio.get_untrusted_types(data=data)
            native = obj
            if any(not t.startswith(_SKOPS_SAFE_PREFIXES) for t in trusted):
                # Third-party types (XGBoost, LightGBM, user classes): make sure skops reads them back,
                # else fall back to pickle. scikit-learn's own types always round-trip.
                native = sio.loads(data, trusted=trusted)
            return SavedModel(data=data, format="skops", metadata={**metadata, "trusted_types": trusted}, native=native)
        except Exception:  # noqa: BLE001 - any skops failure means: fall back to pickle
            data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            return SavedModel(data=data, format="pickle", metadata=metadata)

    def load(self, saved: SavedModel) -> Any:
        if saved.format == "skops":
            sio = require("skops.io", "sklearn")
            try:
                return sio.loads(saved.data, trusted=list(saved.metadata.get("trusted_types", [])))
            except Exception as e:  # noqa: BLE001 - skops raises many kinds of errors on bad input
                raise InvalidArtifact(f"not a readable skops artifact: {e}", details={"kind": self.name}) from e
        if saved.format == "pickle":
            check_pickle_stream(saved.data, kind=self.name)
            try:
                native = pickle.loads(saved.data)  # noqa: S301 - bytes were hash-checked by the caller
            except Exception as e:  # noqa: BLE001
                raise InvalidArtifact(f"not a readable pickle artifact: {e}", details={"kind": self.name}) from e
            if not self.detect(native):
                raise InvalidArtifact(
                    f"the artifact holds a {type(native).__name__}, not a scikit-learn estimator",
                    details={"kind": self.name},
                )
            return native
        raise InvalidArtifact(f"the sklearn kind cannot read format {saved.format!r}", details={"kind": self.name})

    def signature(self, native: Any, example: pd.DataFrame | None) -> Signature:
        if example is not None:
            return Signature(inputs=infer_columns(example))
        names = getattr(native, "feature_names_in_", None)
        if names is None:
            raise InvalidArgument(
                "pass input_example=... (a few rows of the training data) so the signature can be recorded",
                details={"field": "input_example"},
            )
        return Signature(inputs=[ColumnSpec(name=str(n), type="number") for n in names])

    def predict(self, native: Any, frame: pd.DataFrame) -> pd.DataFrame:
        plan = _plan_for(native)
        estimator, X = _call_inputs(plan, native, frame)
        if plan.classes is None:
            return outputs_to_frame(estimator.predict(X), frame.index)
        proba = np.asarray(estimator.predict_proba(X))
        if plan.argmax:
            # For these classifiers predict() is classes_[argmax(predict_proba)]; one call, not two.
            labels = plan.classes[np.argmax(proba, axis=1)]
        else:
            labels = np.asarray(estimator.predict(X))
        if labels.ndim != 1 or len(labels) != len(frame):
            return outputs_to_frame(labels, frame.index)  # let the generic path explain the shape
        return columns_frame(plan.output_names, [labels, *proba.T], frame.index)


# Classifiers whose predict() is, by their own code, the class of highest predict_proba (ties to the
# first class); for them the gateway calls the model once. Anything else gets both calls.
_ARGMAX_CLASSIFIERS = {
    ("sklearn", "LogisticRegression"),
    ("sklearn", "RandomForestClassifier"),
    ("sklearn", "ExtraTreesClassifier"),
    ("sklearn", "DecisionTreeClassifier"),
    ("sklearn", "ExtraTreeClassifier"),
    ("sklearn", "GradientBoostingClassifier"),
    ("sklearn", "HistGradientBoostingClassifier"),
    ("sklearn", "KNeighborsClassifier"),
    ("sklearn", "GaussianNB"),
    ("sklearn", "BernoulliNB"),
    ("sklearn", "MultinomialNB"),
    ("sklearn", "ComplementNB"),
    ("sklearn", "MLPClassifier"),
    ("xgboost", "XGBClassifier"),
    ("lightgbm", "LGBMClassifier"),
}


@dataclass
class _Plan:
    classes: np.ndarray | None
    argmax: bool
    numpy_order: list[str] | None
    twin: Any
    output_names: list[str]
    frame_order: list[str] | None
    _numeric: bool | None = None
    _known_columns: Any = None

    def in_order(self, frame: pd.DataFrame, order: list[str]) -> bool:
        """Whether the frame's columns are ``order``. Decoded requests of one signature share one
        column Index object, so after the first comparison the answer is an identity check."""
        columns = frame.columns
        if columns is self._known_columns:
            return True
        if columns.tolist() == order:
            self._known_columns = columns
            return True
        return False

    def numeric(self, frame: pd.DataFrame) -> bool:
        # A loaded model always gets frames of its own signature: whether they are all numbers is
        # settled by the first one.
        if self._numeric is None:
            self._numeric = _all_numeric(frame)
        return self._numeric


_PLANS: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()
_PLANS_LOCK = threading.Lock()


def _plan_for(native: Any) -> _Plan:
    """How to call a loaded estimator quickly, worked out once per estimator."""
    try:
        plan = _PLANS.get(native)
    except TypeError:  # not weak-referenceable: work it out each time
        return _make_plan(native)
    if plan is None:
        plan = _make_plan(native)
        with _PLANS_LOCK, contextlib.suppress(TypeError):
            _PLANS[native] = plan
    return plan


def _make_plan(native: Any) -> _Plan:
    has_proba = callable(getattr(native, "predict_proba", None)) and getattr(native, "classes_", None) is not None
    classes = np.asarray(native.classes_) if has_proba else None
    final = native.steps[-1][1] if hasattr(native, "steps") else native
    argmax = (type(final).__module__.split(".")[0], type(final).__name__) in _ARGMAX_CLASSIFIERS
    names = getattr(native, "feature_names_in_", None)
    numpy_order = None
    twin = native
    if (
        names is not None
        and type(native).__module__.startswith("sklearn.")
        and not hasattr(native, "steps")
        and not _has_named_parts(native)
    ):
        # A shallow copy shares the fitted arrays; without feature_names_in_ it accepts an array
        # without warning. Pipelines keep the DataFrame path: their steps may select columns by name.
        twin = copy.copy(native)
        with contextlib.suppress(AttributeError):
            del twin.feature_names_in_
            numpy_order = [str(n) for n in names]
    output_names = ["prediction"]
    if classes is not None:
        output_names += [_proba_name(_plain(label)) for label in classes]
    return _Plan(
        classes=classes,
        argmax=has_proba and argmax,
        numpy_order=numpy_order,
        twin=twin,
        output_names=output_names,
        frame_order=[str(n) for n in names] if names is not None else None,
    )


def _call_inputs(plan: _Plan, native: Any, frame: pd.DataFrame) -> tuple[Any, Any]:
    """The estimator to call and what to give it."""
    if plan.numpy_order is not None and plan.numeric(frame):
        # scikit-learn's own checks on a DataFrame cost several times the model itself for a few
        # rows; the twin (the same fitted arrays, without feature_names_in_) takes the columns as an
        # array in the order it was fitted on.
        ordered = frame if plan.in_order(frame, plan.numpy_order) else frame[plan.numpy_order]
        with contextlib.suppress(TypeError, ValueError):  # not numbers after all: the general path
            return plan.twin, ordered.to_numpy(dtype=float)
    if plan.frame_order is not None:
        # Fitted on a DataFrame: scikit-learn wants the columns in the order it saw them.
        return native, frame if plan.in_order(frame, plan.frame_order) else frame[plan.frame_order]
    return native, frame.to_numpy()


def _has_named_parts(native: Any) -> bool:
    """Whether a fitted part (a meta-estimator's inner estimator) also checks feature names."""
    for value in vars(native).values():
        parts = value if isinstance(value, (list, tuple)) else [value]
        if any(getattr(part, "feature_names_in_", None) is not None for part in parts[:3]):
            return True
    return False


def _all_numeric(frame: pd.DataFrame) -> bool:
    return all(getattr(dtype, "kind", "O") in "fiub" for dtype in frame.dtypes.tolist())


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _classes(obj: Any) -> list[Any] | None:
    classes = getattr(obj, "classes_", None)
    if classes is None:
        return None
    return [_plain(c) for c in classes]


def _check_fitted(obj: Any) -> None:
    try:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted
    except ImportError:
        return
    try:
        check_is_fitted(obj)
    except NotFittedError as e:
        raise InvalidArtifact(
            f"the {type(obj).__name__} is not fitted; fit it before registering", details={"kind": "sklearn"}
        ) from e
    except (TypeError, AttributeError):
        return  # not a BaseEstimator (e.g. a duck-typed wrapper): nothing to check
