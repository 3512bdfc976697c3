"""The demo's credit bureau: applicant history in a SQLite table, for the credit-decision pipeline's lookup."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

BUREAU_FILE = "bureau.db"
HISTORY_TABLE = "applicant_history"
HISTORY_COLUMNS = ("credit_history_months", "num_open_accounts")


def bureau_url(data_dir: Path) -> str:
    """The SQLAlchemy URL of the bureau database under ``data_dir/demo`` (what ``${DATA_DIR}`` expands to)."""
    return f"sqlite:///{(Path(data_dir) / 'demo' / BUREAU_FILE).resolve()}"


def write_bureau(data_dir: Path, applicants: pd.DataFrame) -> str:
    """Write ``applicant_history`` (applicant_id primary key, credit_history_months, num_open_accounts)
    from the generated applicants to ``data_dir/demo/bureau.db``; returns its URL.

    The file is written beside its final name and renamed into place, so a pipeline that reads it
    meanwhile sees the old table or the new one, never half of one.
    """
    import sqlalchemy as sa

    folder = Path(data_dir) / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / BUREAU_FILE
    partial = folder / f".{BUREAU_FILE}.{os.getpid()}.tmp"
    partial.unlink(missing_ok=True)
    metadata = sa.MetaData()
    table = sa.Table(
        HISTORY_TABLE,
        metadata,
        sa.Column("applicant_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("credit_history_months", sa.Integer, nullable=False),
        sa.Column("num_open_accounts", sa.Integer, nullable=False),
    )
    columns = ["applicant_id", *HISTORY_COLUMNS]
    records = applicants[columns].astype("int64").to_dict(orient="records")
    engine = sa.create_engine(f"sqlite:///{partial.resolve()}")
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            if records:
                conn.execute(table.insert(), records)
    finally:
        engine.dispose()
    os.replace(partial, target)
    return bureau_url(data_dir)
