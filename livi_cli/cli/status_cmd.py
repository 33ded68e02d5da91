"""`livi status`: where the library is, what it holds, which model made it, index health, last scan."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from livi_cli.cli.options import LibraryOpt


def status(
    json_out: bool = typer.Option(False, "--json", help="Print the status as JSON on stdout."),
    library: Optional[Path] = LibraryOpt,
) -> None:
    """Show the library: location, tracks by state, model identity, index health and the last scan."""
    from livi_cli import api
    from livi_cli.cli.console import print_json, print_table, warn

    st = api.status(api.settings(library=library))
    if json_out:
        print_json(st)
        return
    counts = st["counts"]
    last = st.get("last_scan") or {}
    index = st["index"]
    rows = [
        ("library", st["library"]),
        ("tracks", f"{counts['ok']} ok, {counts['instrumental']} instrumental, {counts['failed']} failed, "
                   f"{counts['removed']} removed"),
        ("model", st.get("model_key") or "none yet"),
        ("configured model", st.get("configured_model") or st.get("configured_model_error", "")),
        ("index", f"{index['state']}: {index['reason']}"),
        ("search", st.get("search", "")),
        ("last scan", _when(last.get("finished_at") or last.get("started_at"))
         + ("" if not last or last.get("finished_at") else " (did not finish)")),
    ]
    print_table("Library", ["", "value"], rows)
    if not st.get("model_matches", True):
        warn("the configured model differs from the one the library was built with; "
             "the next `livi scan` re-embeds every track")
    if st.get("stale_embeddings"):
        warn(f"{st['stale_embeddings']} tracks still carry vectors of an earlier model (run `livi scan`)")


def _when(ts: float | None) -> str:
    return "never" if not ts else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
