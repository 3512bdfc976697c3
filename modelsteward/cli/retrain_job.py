"""The process of a retraining job with an entry point: open the store, fetch the training data, call
``function(steward, data, model)``. The engine runs it as ``python -m modelsteward.cli.retrain_job``; it
lives with the faces because it opens the facade."""

from __future__ import annotations

import importlib
import os
import sys


def main() -> int:
    from modelsteward.domain.lifecycle import RetrainSpec
    from modelsteward.local_steward import LocalSteward
    from modelsteward.settings import Settings

    spec = RetrainSpec.model_validate_json(os.environ["STEWARD_RETRAIN_SPEC"])
    model = os.environ["STEWARD_MODEL"]
    assert spec.entry_point is not None
    module_name, _, function_name = spec.entry_point.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    function = getattr(importlib.import_module(module_name), function_name)
    settings = Settings()
    data = None
    if spec.data is not None:
        if spec.url is not None:
            import pandas as pd
            import sqlalchemy as sa

            engine = sa.create_engine(spec.url)
            try:
                with engine.connect() as conn:
                    data = pd.read_sql_query(sa.text(spec.data), conn)
            finally:
                engine.dispose()
        else:
            from modelsteward.monitoring.export import run_sql

            data = run_sql(settings, spec.data)
        print(f"training data: {len(data)} rows, columns {list(data.columns)}", flush=True)
    with LocalSteward(settings=settings) as st:
        result = function(st, data, model)
    print(f"entry point {spec.entry_point} returned {result!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
