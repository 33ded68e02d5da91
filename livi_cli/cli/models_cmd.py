"""`livi models`: status of every model, `install-head`, `download`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from livi_cli.cli.options import HeadOpt, WhisperOpt

models_app = typer.Typer(help="Show, install and download the models livi uses.", no_args_is_help=False)



@models_app.callback(invoke_without_command=True)
def models_status(
    ctx: typer.Context,
    whisper: Optional[str] = WhisperOpt,
    head: Optional[str] = HeadOpt,
    verify: bool = typer.Option(False, "--verify", help="Re-hash the installed head and compare with the recorded sha256."),
    json_out: bool = typer.Option(False, "--json", help="Print the status as JSON on stdout."),
) -> None:
    """Show each model: present or missing, where, checksum. Exit code 1 when a needed model is missing."""
    if ctx.invoked_subcommand is not None:
        return
    from livi_cli import api
    from livi_cli.cli.console import err_console, print_json, print_table

    rows = api.models_status(api.settings(whisper=whisper, head=head), verify=verify)
    if json_out:
        print_json(rows)
    else:
        print_table("Models", ["model", "kind", "status", "location", "sha256 / revision", "licence"],
                    ([r["name"], r["kind"], r["status"], r["location"], r["checksum"], r["licence"]] for r in rows))
    missing = [r for r in rows if r["required"] and r["status"] != "present"]
    for r in missing:
        err_console.print(f"error: model '{r['name']}' {r['status']} (looked in {r['location']}); {r['hint']}")
    if missing:
        raise typer.Exit(1)


@models_app.command("install-head")
def install_head(path: Path = typer.Argument(..., help="The downloaded livi.pth (or a head in livi's own format).")) -> None:
    """Validate a head checkpoint (keys, shapes), record its sha256 and install it under the data dir."""
    from livi_cli import api
    from livi_cli.cli.console import info

    meta, dest = api.install_head(api.settings(), path)
    c = meta["config"]
    info(f"installed {dest}\n  sha256 {meta['sha256']}\n  {c['dim_whisper']}-d encoder states -> {c['dim_embed']}-d embeddings")


@models_app.command("download")
def download(whisper: Optional[str] = WhisperOpt) -> None:
    """Fetch the Whisper model through huggingface_hub (cached; resumes; progress bar)."""
    from livi_cli import api
    from livi_cli.cli.console import info

    path = api.download_whisper(api.settings(whisper=whisper))
    info(f"Whisper ready in {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
