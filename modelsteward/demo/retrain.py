"""The credit-risk model's retraining job: the champion's recipe refitted with the latest labelled decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from modelsteward.demo.data import FEATURES, TARGET
from modelsteward.demo.training import risk_metrics, risk_pipeline
from modelsteward.errors import InvalidArgument

SEED = 0


def retrain_credit_risk(st: Any, data: pd.DataFrame | None, model: str) -> int:
    """The entry point of ``credit_lifecycle.yaml``'s retraining job, called as ``function(steward, data, model)``.

    ``data`` are the labelled credit decisions of the last 30 days (the ``score`` step's inputs and the observed
    default, ``defaulted_90d``). Outcomes exist only for approved loans, so alone they would teach the model
    nothing about the applicants the bank declines: the refresh refits the champion's recipe (its recorded
    ``params``) on the champion's development sample, found through its lineage, plus the recent decisions.

    The champion's test set stays held out, and so do the recent decisions on its applicants (the log carries no
    applicant id; an applicant is their features): ``auc`` and the other metrics are measured on that test set,
    like the champion's, and ``auc_recent`` on those recent decisions. Training and hold-out data are written
    beside the store for the lineage. Returns the new version's number.
    """
    champion = st.get_version(f"{model}@production")
    development = _linked(st, champion, "training")
    benchmark = _linked(st, champion, "test")
    recent = _labelled(data, dtypes=development[FEATURES].dtypes)
    held_out = applicant_keys(recent).isin(set(applicant_keys(benchmark))).to_numpy()
    recent_train, recent_holdout = recent[~held_out], recent[held_out]
    columns = [*FEATURES, TARGET]
    training = pd.concat([development[columns], recent_train[columns]], ignore_index=True)
    print(
        f"recent decisions: {len(recent)} labelled ({recent['ts'].min():%Y-%m-%d} to {recent['ts'].max():%Y-%m-%d}, "
        f"default rate {recent[TARGET].mean():.1%}); training on {len(development)} development rows of "
        f"{model}/{champion.version} + {len(recent_train)} recent; held out: {len(benchmark)} test rows + "
        f"{len(recent_holdout)} recent decisions on those applicants",
        flush=True,
    )
    recipe = _recipe(champion.params)
    fitted = risk_pipeline(_estimator(recipe)).fit(training[FEATURES], training[TARGET])
    metrics = risk_metrics(fitted, benchmark[FEATURES], benchmark[TARGET])
    if recent_holdout[TARGET].nunique() == 2:  # an AUC needs defaults and repayments
        metrics["auc_recent"] = risk_metrics(fitted, recent_holdout[FEATURES], recent_holdout[TARGET])["auc"]
    print(f"held out: {metrics}", flush=True)

    # The lineage names files an auditor can read again, like the development sample's.
    folder = Path(st.settings.data_dir) / "demo" / "retraining"
    folder.mkdir(parents=True, exist_ok=True)
    run = f"job-{st.settings.job_id}" if st.settings.job_id is not None else "manual"
    training_path = folder / f"{model}-{run}-training.parquet"
    holdout_path = folder / f"{model}-{run}-holdout.parquet"
    training.to_parquet(training_path, index=False)
    recent_holdout[columns].to_parquet(holdout_path, index=False)
    version = st.register_model(
        model,
        fitted,
        kind="sklearn",
        input_example=training[FEATURES].head(5),
        training_data=str(training_path),
        datasets={"test": _uri(st, champion, "test"), "validation": str(holdout_path)},
        metrics=metrics,
        params={
            **recipe,
            "refreshed_from": champion.version,
            "development_rows": len(development),
            "recent_rows": len(recent_train),
        },
        version_tags={"steward.entry_point": "modelsteward.demo.retrain:refit"},
        version_description=(
            f"Refresh of version {champion.version} after the drift alert: the same recipe on its development "
            f"sample plus {len(recent_train)} labelled decisions of the last 30 days."
        ),
        # The demo's code ships inside the installed package, whose version the environment records; the
        # working directory's git repository (if any) says nothing about it.
        capture_git=False,
    )
    print(f"registered {model}/{version.version}", flush=True)
    return version.version


def applicant_keys(frame: pd.DataFrame) -> pd.Series:
    """One hash per row of the features: the same applicant, as the score step saw them, has the same key."""
    return pd.util.hash_pandas_object(frame[FEATURES], index=False).reset_index(drop=True)


def _labelled(data: pd.DataFrame | None, *, dtypes: pd.Series) -> pd.DataFrame:
    """The query's rows as features, ``ts`` and the target; refuses data that cannot train a classifier."""
    needed = [*FEATURES, TARGET, "ts"]
    if data is None or data.empty:
        raise InvalidArgument("no labelled decisions to retrain on", details={"field": "data"})
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise InvalidArgument(f"the training data lacks {', '.join(missing)}", details={"field": "data"})
    frame = data[needed].dropna().astype({**dtypes.to_dict(), TARGET: "int64"})
    counts = frame[TARGET].value_counts()
    if len(counts) < 2 or counts.min() < 20:
        raise InvalidArgument(
            f"too few defaults or repayments to learn from: {counts.to_dict()}", details={"field": "data"}
        )
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def _link(version: Any, role: str) -> Any:
    link = next((d for d in version.datasets if d.role == role), None)
    if link is None:
        raise InvalidArgument(
            f"{version.name}/{version.version} records no {role} data set to refresh from",
            details={"field": "datasets", "role": role},
        )
    return link


def _uri(st: Any, version: Any, role: str) -> str:
    uri = st.get_dataset(_link(version, role).content_hash).uri
    if uri is None:
        raise InvalidArgument(
            f"the {role} data of {version.name}/{version.version} was registered without a location",
            details={"field": "datasets", "role": role},
        )
    return str(uri)


def _linked(st: Any, version: Any, role: str) -> pd.DataFrame:
    """A data set the version's lineage links, read where it lies and checked against its fingerprint."""
    from modelsteward.catalog.registration import read_table
    from modelsteward.stats.fingerprint import fingerprint

    frame = read_table(_uri(st, version, role))
    if fingerprint(frame).content_hash != _link(version, role).content_hash:
        raise InvalidArgument(
            f"the {role} data of {version.name}/{version.version} changed since it was registered",
            details={"field": "datasets", "role": role},
        )
    return frame


def _recipe(params: dict[str, Any]) -> dict[str, Any]:
    keys = ("algorithm", "max_iter", "learning_rate", "max_depth", "min_samples_leaf")
    return {k: params[k] for k in keys if k in params}


def _estimator(recipe: dict[str, Any]) -> Any:
    algorithm = recipe.get("algorithm")
    if algorithm == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        settings = {k: v for k, v in recipe.items() if k != "algorithm"}
        return HistGradientBoostingClassifier(**settings, random_state=SEED)
    if algorithm == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=int(recipe.get("max_iter", 1000)))
    raise InvalidArgument(f"no recipe to refit a {algorithm!r} champion", details={"field": "params"})


def refit(data: pd.DataFrame, params: dict[str, Any]) -> Any:
    """The reproducibility entry point (tag ``steward.entry_point``): a version's recipe, from its recorded
    ``params``, fitted again on its recorded training data; returns the fitted pipeline."""
    return risk_pipeline(_estimator(_recipe(params))).fit(data[FEATURES], data[TARGET])
