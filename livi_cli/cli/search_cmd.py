"""`livi find-covers FILE`: the library tracks nearest to one file (covers, live versions, copies)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from livi_cli.cli.options import HeadOpt, LibraryOpt, WhisperOpt



def find_covers(
    file: Path = typer.Argument(..., help="An audio file, inside the library or not."),
    k: int = typer.Option(10, "-k", "--top", min=1, help="How many matches to show."),
    min_similarity: Optional[float] = typer.Option(None, "--min-similarity", help="Hide matches below this cosine similarity."),
    add: bool = typer.Option(False, "--add", help="Add a file from outside the library to it."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    library: Optional[Path] = LibraryOpt,
    device: Optional[str] = typer.Option(None, "--device", help="Device for embedding a file from outside the library."),
    whisper: Optional[str] = WhisperOpt,
    head: Optional[str] = HeadOpt,
) -> None:
    """Rank library tracks by LIVI similarity to FILE: the file itself is left out and exact copies of it
    are marked. A file from outside the library is embedded on the fly (kept only with --add)."""
    from livi_cli import api
    from livi_cli.cli.console import info, print_json, print_table

    s = api.settings(library=library, device=device, whisper=whisper, head=head)
    result = api.find_covers(file, s, k=k, min_similarity=min_similarity, add=add)
    if json_out:
        print_json(result.to_dict())
    else:
        if result.matches:
            marked = any(m.duplicate for m in result.matches)  # the note column only when it says something
            cols = [("rank", "right"), ("similarity", "right"), "title", "artist", "album", ("duration", "right"), "path"]
            print_table(f"Nearest to {result.query}", cols + (["note"] if marked else []),
                        ([m.rank, f"{m.similarity:.3f}", m.track.title, m.track.artist, m.track.album,
                          _duration(m.track.duration), m.track.path] + ([_note(m.duplicate)] if marked else [])
                         for m in result.matches))
        elif not result.notice:
            info("no matches" + (f" at similarity ≥ {min_similarity:g}" if min_similarity is not None else ""))
    if result.notice:
        info(result.notice)
    if result.added:
        info(f"added {result.query} to the library")


def _note(duplicate: str | None) -> str:
    return f"exact copy ({duplicate})" if duplicate else ""


def _duration(seconds: float | None) -> str:
    if not seconds:
        return ""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def register(app: typer.Typer) -> None:
    app.command("find-covers")(find_covers)
