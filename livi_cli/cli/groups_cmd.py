"""`livi clusters` (cover clusters) and `livi duplicates` (copies of one recording).

Both only read the catalog (no model is loaded); tables go to stdout, `--export csv|json` writes
machine-readable data to stdout or `--output PATH`. The CSV headers below are a stable interface.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer

from livi_cli.cli.options import HeadOpt, LibraryOpt, WhisperOpt


CLUSTER_COLUMNS = ("cluster_id", "cluster_size", "track_id", "path", "title", "artist", "album", "duration",
                   "similarity_to_medoid", "duplicate_of")
DUPLICATE_COLUMNS = ("group_id", "group_size", "keep", "track_id", "path", "codec", "lossless", "bitrate",
                     "sample_rate", "size", "duration", "match", "similarity_to_kept", "title", "artist", "album",
                     "keep_reason", "tags_agree")

ExportOpt = typer.Option(None, "--export", help="Write csv or json instead of tables.")
OutputOpt = typer.Option(None, "--output", "-o", help="File for --export (default: stdout).")
PreferOpt = typer.Option(None, "--prefer", help="Among otherwise equal copies keep the one under this folder "
                         "(repeatable).")
TABLE_CAP = 200  # tables without --limit stop here: 24k Rich tables take minutes and nobody reads them


def _cap_notice(shown: int, total: int, what: str) -> None:
    if shown < total:
        from livi_cli.cli.console import info

        info(f"showing the first {shown} of {total} {what}; use --limit N, --query TEXT or --export csv|json for more")


def _duration(seconds: float | None) -> str:
    if not seconds or not math.isfinite(seconds):  # a broken header can claim an infinite length
        return ""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def _round(x: float | None, digits: int) -> float | None:
    """Rounded for export; None (empty cell, JSON null) for a missing or non-finite value, which
    JSON cannot represent."""
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _export(fmt: str, columns, rows, json_data, output: Path | None, what: str) -> None:
    """Write the CSV rows or the JSON document (both callables: only the chosen one is built)."""
    from livi_cli import export as ex
    from livi_cli.cli.console import info

    ex.export(fmt, columns, rows() if fmt == "csv" else [], output, json_data=json_data() if fmt == "json" else None)
    if output is not None and str(output) != "-":  # "-" is stdout: nothing was written to a file
        info(f"wrote {what} to {output}")


# ---------------------------------------------------------------- clusters
def _cluster_record(rep, row) -> dict:
    t = row.track
    return {"cluster_id": rep.cluster_id, "cluster_size": rep.size, "track_id": t.id, "path": t.path,
            "title": t.title, "artist": t.artist, "album": t.album, "duration": _round(t.duration, 3),
            "similarity_to_medoid": _round(row.similarity, 4), "duplicate_of": row.duplicate_of}


def _cluster_json(reports) -> list[dict]:
    out = []
    for rep in reports:
        members = []
        for row in rep.rows:
            rec = _cluster_record(rep, row)
            del rec["cluster_id"], rec["cluster_size"]
            rec["copies"] = list(row.copies or [])
            members.append(rec)
        out.append({"cluster_id": rep.cluster_id, "cluster_size": rep.size, "cohesion": round(rep.cohesion, 4),
                    "medoid_track_id": rep.rows[0].track.id, "members": members})
    return out


def _cluster_note(row, is_medoid: bool) -> str:
    if row.duplicate_of is not None:
        return f"copy of #{row.duplicate_of}"
    notes = ["medoid"] if is_medoid else []
    if row.copies:
        notes.append(f"+{len(row.copies)} cop{'y' if len(row.copies) == 1 else 'ies'}")
    return ", ".join(notes)


def clusters(
    min_similarity: Optional[float] = typer.Option(
        None, "--min-similarity", min=-1.0, max=1.0,
        help="Average cosine similarity two groups need to merge (default 0.70, see README)."),
    min_size: int = typer.Option(2, "--min-size", min=2, help="Hide clusters with fewer distinct recordings."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Show at most this many clusters."),
    query: Optional[str] = typer.Option(None, "--query", help="Only clusters with a title or artist containing TEXT."),
    include_duplicates: bool = typer.Option(False, "--include-duplicates",
                                            help="List every copy of a recording, not one row per recording."),
    prefer: Optional[List[Path]] = PreferOpt,
    export: Optional[str] = ExportOpt,
    output: Optional[Path] = OutputOpt,
    library: Optional[Path] = LibraryOpt,
    whisper: Optional[str] = WhisperOpt,
    head: Optional[str] = HeadOpt,
) -> None:
    """Group the library into cover clusters (versions of the same song) from the stored embeddings."""
    from livi_cli import api, export as ex
    from livi_cli.cli.console import console, info, make_table

    fmt = ex.check_format(export)
    s = api.settings(library=library, whisper=whisper, head=head)
    reports = api.clusters(s, min_similarity=min_similarity, min_size=min_size, limit=limit, query=query,
                           include_duplicates=include_duplicates, prefer=prefer or ())
    if fmt:
        _export(fmt, CLUSTER_COLUMNS, lambda: [_cluster_record(rep, row) for rep in reports for row in rep.rows],
                lambda: _cluster_json(reports), output, f"{len(reports)} clusters")
        return
    if not reports:
        info("no cover clusters found" + (f" matching '{query}'" if query else ""))
        return
    shown = reports if limit else reports[:TABLE_CAP]
    for rep in shown:
        table = make_table(f"Cluster {rep.cluster_id}: {rep.size} recordings, cohesion {rep.cohesion:.2f}",
                           [("track", "right"), ("similarity", "right"), "title", "artist", "album",
                            ("duration", "right"), "path", "note"])
        for i, row in enumerate(rep.rows):
            t = row.track
            table.add_row(str(t.id), f"{row.similarity:.3f}", t.title or "", t.artist or "", t.album or "",
                          _duration(t.duration), t.path, _cluster_note(row, i == 0))
        console.print(table)
    _cap_notice(len(shown), len(reports), "clusters")


# ---------------------------------------------------------------- duplicates
def _dup_record(group, member) -> dict:
    from livi_cli.groups.duplicates import is_lossless

    t = member.track
    return {"group_id": group.group_id, "group_size": len(group.members), "keep": member.keep, "track_id": t.id,
            "path": t.path, "codec": t.codec, "lossless": is_lossless(t.codec, t.path), "bitrate": t.bitrate,
            "sample_rate": t.sample_rate, "size": t.size, "duration": _round(t.duration, 3),
            "match": member.match, "similarity_to_kept": _round(member.similarity, 4), "title": t.title,
            "artist": t.artist, "album": t.album, "keep_reason": group.reason if member.keep else None,
            "tags_agree": group.tags_agree}


def _dup_json(groups) -> list[dict]:
    group_keys = ("group_id", "group_size", "keep_reason", "tags_agree")
    return [{"group_id": g.group_id, "group_size": len(g.members), "keep_track_id": g.keeper.id,
             "keep_reason": g.reason, "tags_agree": g.tags_agree,
             "members": [{k: v for k, v in _dup_record(g, m).items() if k not in group_keys} for m in g.members]}
            for g in groups]


def _size(n: int | None) -> str:
    return "" if n is None else f"{n / 1e6:.1f} MB"


def _bitrate(bps: int | None) -> str:
    return "" if not bps else f"{round(bps / 1000)} kbps"


def duplicates(
    prefer: Optional[List[Path]] = PreferOpt,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Show at most this many groups."),
    export: Optional[str] = ExportOpt,
    output: Optional[Path] = OutputOpt,
    library: Optional[Path] = LibraryOpt,
    whisper: Optional[str] = WhisperOpt,
    head: Optional[str] = HeadOpt,
) -> None:
    """Find copies of the same recording (identical files, other formats/bitrates/sample rates, trimmed
    silence) and suggest which copy to keep. Nothing is ever deleted or moved."""
    from livi_cli import api, export as ex
    from livi_cli.cli.console import console, info, make_table

    fmt = ex.check_format(export)
    s = api.settings(library=library, whisper=whisper, head=head)
    groups = api.duplicates(s, prefer=prefer or (), limit=limit)
    if fmt:
        _export(fmt, DUPLICATE_COLUMNS, lambda: [_dup_record(g, m) for g in groups for m in g.members],
                lambda: _dup_json(groups), output, f"{len(groups)} duplicate groups")
        return
    if not groups:
        info("no duplicates found")
        return
    shown = groups if limit else groups[:TABLE_CAP]
    for g in shown:
        note = "" if g.tags_agree else " (titles differ: check by ear)"
        table = make_table(f"Group {g.group_id}: {len(g.members)} copies of '{g.keeper.title or ''}', "
                           f"keep #{g.keeper.id} ({g.reason}){note}",
                           ["", ("track", "right"), "format", ("bitrate", "right"), ("sample rate", "right"),
                            ("size", "right"), ("duration", "right"), "match", "path"])
        for m in g.members:
            t = m.track
            table.add_row("keep" if m.keep else "", str(t.id), t.codec or "", _bitrate(t.bitrate),
                          f"{t.sample_rate} Hz" if t.sample_rate else "", _size(t.size), _duration(t.duration),
                          m.match, t.path)
        console.print(table)
    _cap_notice(len(shown), len(groups), "duplicate groups")
    info("livi never deletes or moves files; use --export csv to act on these groups with your own tools.")


def register(app: typer.Typer) -> None:
    app.command("clusters")(clusters)
    app.command("duplicates")(duplicates)
