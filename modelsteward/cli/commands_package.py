"""``steward package``: a self-contained bundle of one version, to serve it anywhere without the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelsteward.cli.common import DataDir, Token, Url, app, console, handle_errors, open_steward


@app.command("package")
@handle_errors
def package(
    ref: Annotated[str, typer.Argument(help="name, name/VERSION or name@ALIAS")],
    out: Annotated[Path, typer.Option("--out", "-o", help="bundle directory to create (new or empty)")],
    data_dir: DataDir = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Write a bundle (artifact, model.json, server, requirements, Dockerfile) that serves REF on premises,
    in any cloud or at the edge, with the gateway's protocols and answers."""
    from modelsteward.serving.packaging import check_out_dir, write_bundle

    check_out_dir(out)  # before downloading an artifact that could not be written
    with open_steward(data_dir, url, token) as st:
        version, data = st.artifact_bytes(ref)
    path = write_bundle(version, data, out)
    console.print(f"packaged {version.ref} ({version.kind}) -> {path}", highlight=False)
    console.print(
        f"run it: cd {path} && docker build -t {version.name} . && docker run -p 8080:8080 {version.name}\n"
        f"    or: cd {path} && pip install -r requirements.txt && python serve.py",
        highlight=False,
    )
