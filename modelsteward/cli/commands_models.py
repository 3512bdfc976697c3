"""``steward models ...`` and ``steward predict``: the catalog from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modelsteward.cli.common import (
    DataDir,
    JsonOut,
    Token,
    Url,
    app,
    console,
    handle_errors,
    models_app,
    open_steward,
    parse_pairs,
    print_json,
)
from modelsteward.domain.refs import ModelRef
from modelsteward.errors import InvalidArgument


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


@models_app.command("list")
@handle_errors
def list_models(
    kind: Annotated[str | None, typer.Option(help="only this kind (sklearn, rules, ...)")] = None,
    owner: Annotated[str | None, typer.Option()] = None,
    business_unit: Annotated[str | None, typer.Option("--business-unit")] = None,
    risk_tier: Annotated[str | None, typer.Option("--risk-tier")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable")] = None,
    query: Annotated[str | None, typer.Option("--query", "-q", help="search names and descriptions")] = None,
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """List the models in the catalog."""
    with open_steward(data_dir, url, token) as st:
        models = st.list_models(
            kind=kind,
            owner=owner,
            business_unit=business_unit,
            risk_tier=risk_tier,
            tags=parse_pairs(tag, "--tag") or None,
            query=query,
        )
    if as_json:
        print_json(models)
        return
    table = Table(title=f"{len(models)} model(s)")
    for column in ("name", "kind", "latest", "aliases", "owner", "business unit", "risk", "updated"):
        table.add_column(column)
    for m in models:
        table.add_row(
            m.name,
            m.kind,
            str(m.latest_version),
            ", ".join(f"{a}->{v}" for a, v in sorted(m.aliases.items())),
            m.owner or "",
            m.business_unit or "",
            m.risk_tier or "",
            _when(m.updated_at),
        )
    console.print(table)


@models_app.command("show")
@handle_errors
def show(
    ref: Annotated[str, typer.Argument(help="name, name/VERSION or name@ALIAS")],
    as_json: JsonOut = False,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Show a model (with its versions) or one version (with signature, data and environment)."""
    parsed = ModelRef.parse(ref)
    with open_steward(data_dir, url, token) as st:
        if parsed.version is None and parsed.alias is None:
            model = st.get_model(parsed.name)
            versions = st.list_versions(parsed.name, limit=20)
            if as_json:
                print_json(
                    {
                        "model": model.model_dump(mode="json"),
                        "versions": [v.model_dump(mode="json") for v in versions],
                    }
                )
                return
            _render_model(model, versions)
            return
        version = st.get_version(ref)
        lineage = st.get_lineage(version.ref)
    if as_json:
        print_json({**version.model_dump(mode="json"), "lineage": lineage.model_dump(mode="json")})
        return
    _render_version(version)


def _render_model(model: Any, versions: list[Any]) -> None:
    console.print(f"[bold]{model.name}[/]  ({model.kind})  {model.description}")
    facts = {
        "owner": model.owner,
        "business unit": model.business_unit,
        "risk tier": model.risk_tier,
        "KPIs": ", ".join(k.name for k in model.kpis),
        "protected attributes": ", ".join(model.protected_attributes),
        "tags": ", ".join(f"{k}={v}" for k, v in model.tags.items()),
        "aliases": ", ".join(f"{a} -> {v}" for a, v in sorted(model.aliases.items())),
    }
    for key, value in facts.items():
        if value:
            console.print(f"  {key}: {value}", highlight=False)
    table = Table(title="versions")
    for column in ("version", "kind", "aliases", "metrics", "data", "created by", "created"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            str(v.version),
            v.kind,
            ", ".join(v.aliases),
            ", ".join(f"{k}={val:.4g}" for k, val in v.metrics.items()),
            ", ".join(f"{d.role}:{d.content_hash[:8]}" for d in v.datasets),
            v.created_by or "",
            _when(v.created_at),
        )
    console.print(table)


def _render_version(v: Any) -> None:
    console.print(f"[bold]{v.ref}[/]  ({v.kind})  aliases: {', '.join(v.aliases) or '-'}", highlight=False)
    console.print(f"  artifact: sha256 {v.artifact.sha256} ({v.artifact.size} bytes, {v.artifact.format})")
    console.print(f"  created by {v.created_by} at {_when(v.created_at)}")
    if v.source:
        console.print(f"  source: {v.source.repository} @ {v.source.commit} ({v.source.branch})", highlight=False)
    console.print(
        f"  python {v.requirements.python} on {v.requirements.platform}; "
        + ", ".join(f"{k}=={val}" for k, val in v.requirements.packages.items()),
        highlight=False,
    )
    if v.metrics:
        console.print("  metrics: " + ", ".join(f"{k}={val:.4g}" for k, val in v.metrics.items()))
    if v.params:
        console.print("  params: " + ", ".join(f"{k}={val}" for k, val in v.params.items()), highlight=False)
    table = Table(title="signature")
    table.add_column("direction")
    table.add_column("column")
    table.add_column("type")
    table.add_column("nullable")
    for direction, columns in (("input", v.signature.inputs), ("output", v.signature.outputs)):
        for c in columns:
            table.add_row(direction, c.name, c.type, "yes" if c.nullable else "no")
    console.print(table)
    for d in v.datasets:
        console.print(f"  {d.role} data: {d.name} ({d.row_count} rows, sha256 {d.content_hash[:16]}...)")


@models_app.command("register")
@handle_errors
def register(
    name: Annotated[str, typer.Argument(help="the model's name")],
    path: Annotated[
        str,
        typer.Argument(
            help="model file: .skops/.pkl/.joblib (sklearn), .onnx, a rules or optimization .yaml, "
            "an MLflow model directory, or file.py:Object"
        ),
    ],
    kind: Annotated[str | None, typer.Option(help="sklearn, onnx, python, rules, optimization, mlflow")] = None,
    input_example: Annotated[
        Path | None, typer.Option("--input-example", help="CSV or Parquet with example rows")
    ] = None,
    training_data: Annotated[Path | None, typer.Option("--training-data", help="CSV or Parquet to fingerprint")] = None,
    metric: Annotated[list[str] | None, typer.Option(help="name=value, repeatable")] = None,
    param: Annotated[list[str] | None, typer.Option(help="name=value, repeatable")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="model tag key=value, repeatable")] = None,
    description: Annotated[str | None, typer.Option(help="the model's description")] = None,
    owner: Annotated[str | None, typer.Option()] = None,
    business_unit: Annotated[str | None, typer.Option("--business-unit")] = None,
    risk_tier: Annotated[str | None, typer.Option("--risk-tier", help="low, medium, high or critical")] = None,
    kpi: Annotated[list[str] | None, typer.Option(help="a business KPI the model drives, repeatable")] = None,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Register a new version of a model from a file."""
    from modelsteward.catalog.registration import read_table
    from modelsteward.cli.loading import load_model_file

    model = load_model_file(path)
    example = read_table(input_example).head(5) if input_example else None
    with open_steward(data_dir, url, token) as st:
        version = st.register_model(
            name,
            model,
            kind=kind,
            input_example=example,
            training_data=str(training_data) if training_data else None,
            metrics=parse_pairs(metric, "--metric", numeric=True),
            params=parse_pairs(param, "--param"),
            tags=parse_pairs(tag, "--tag") or None,
            description=description,
            owner=owner,
            business_unit=business_unit,
            risk_tier=risk_tier,
            kpis=kpi or None,
        )
    console.print(f"registered [bold]{version.ref}[/] ({version.kind}, sha256 {version.artifact.sha256[:12]})")


@models_app.command("alias")
@handle_errors
def alias(
    name: Annotated[str, typer.Argument(help="the model's name")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. production, challenger")],
    version: Annotated[int | None, typer.Argument(help="the version to point at")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="remove the alias")] = False,
    expected_version: Annotated[
        int | None, typer.Option("--expected-version", help="only move it if it still points at this version")
    ] = None,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Point an alias at a version (or --delete it)."""
    if delete == (version is not None):
        raise InvalidArgument("give a VERSION to point the alias at, or --delete", details={"field": "version"})
    with open_steward(data_dir, url, token) as st:
        if delete:
            st.delete_alias(name, alias_name)
            console.print(f"deleted {name}@{alias_name}")
            return
        assert version is not None
        record = st.set_alias(name, alias_name, version, expected_version=expected_version)
    console.print(f"{record.model}@{record.alias} -> version {record.version}")


@models_app.command("update")
@handle_errors
def update(
    name: Annotated[str, typer.Argument(help="the model's name")],
    description: Annotated[str | None, typer.Option()] = None,
    owner: Annotated[str | None, typer.Option()] = None,
    business_unit: Annotated[str | None, typer.Option("--business-unit")] = None,
    risk_tier: Annotated[str | None, typer.Option("--risk-tier")] = None,
    kpi: Annotated[list[str] | None, typer.Option(help="replaces the KPI list, repeatable")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="replaces the tags, key=value, repeatable")] = None,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Change a model's metadata."""
    with open_steward(data_dir, url, token) as st:
        model = st.update_model(
            name,
            description=description,
            owner=owner,
            business_unit=business_unit,
            risk_tier=risk_tier,
            kpis=kpi or None,
            tags=parse_pairs(tag, "--tag") or None,
        )
    console.print(f"updated {model.name}")


@app.command("predict")
@handle_errors
def predict(
    ref: Annotated[str, typer.Argument(help="name, name/VERSION or name@ALIAS")],
    input_path: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet file to score")],
    output_path: Annotated[Path, typer.Option("--output", "-o", help="where to write: .parquet or .csv")],
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="rows per chunk")] = 50_000,
    include_input: Annotated[
        bool, typer.Option("--include-input/--no-include-input", help="copy the input columns to the output")
    ] = True,
    engine: Annotated[
        str, typer.Option("--engine", help="local: chunks in this process; dask: partitions on a Dask cluster")
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            envvar="STEWARD_DASK_SCHEDULER",
            help="with --engine dask: tcp://HOST:PORT of a Dask scheduler (default: a LocalCluster for the run); "
            "the output is then a directory of Parquet parts",
        ),
    ] = None,
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Score a file in chunks with a progress bar (batch scoring), here or on Dask."""
    if engine not in ("local", "dask"):
        raise InvalidArgument(f"unknown engine {engine!r}: use local or dask", details={"field": "engine"})
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with open_steward(data_dir, url, token) as st:
        version = st.get_version(ref)
        with Progress(
            TextColumn(f"scoring with {version.ref}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("score", total=None)

            def advance(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            if engine == "dask":
                rows = st.score_with_dask(
                    version.ref,
                    input_path,
                    output_path,
                    scheduler=scheduler,
                    include_input=include_input,
                    progress=advance,
                )
            else:
                rows = st.score_file(
                    version.ref,
                    input_path,
                    output_path,
                    chunk_size=chunk_size,
                    include_input=include_input,
                    progress=advance,
                )
    console.print(f"scored {rows} row(s) with {version.ref} -> {output_path}")
