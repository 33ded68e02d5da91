"""`livi scan`, `livi find-covers`, `livi status` end to end on a synthetic library with the tiny models."""
from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from livi_cli.cli.app import app
from livi_cli.library import index
from livi_cli.library.catalog import Catalog
from tests.synth import write_track

runner = CliRunner()


@pytest.fixture(autouse=True)
def plain_windows(tiny_env, monkeypatch):
    """Synthetic melodies have no voice: the real vocal detector would call them instrumental and embed
    nothing. Plain 30 s windows (detector 'none') make every test track embeddable."""
    monkeypatch.setenv("LIVI_VOCAL_DETECTOR", "none")

ODD = {  # tags a naive CSV/markup/path handler would break on
    "t0.flac": dict(title="Song [Live]", artist="Smith, John", album="Ça, [Bonus] \"Edition\""),
    "t1.mp3": dict(title="Ballad (feat. X), Pt. 2", artist="Sigur Rós"),
    "t2.ogg": dict(title="[bold]not markup[/bold]", artist="A; B"),
    "t3.wav": dict(title="Plain"),
    "t4.m4a": dict(title="Näive, 日本語", artist="Ünïcode"),
    "Música/日本/t5.opus": dict(title="Opus song"),
}


def make_library(root):
    for i, (name, tags) in enumerate(ODD.items()):
        write_track(root / name, seconds=3 + i % 3, seed=i, **tags)
    shutil.copy(root / "t0.flac", root / "copy of t0.flac")  # an exact duplicate
    (root / "broken.flac").write_bytes(b"fLaC" + b"\x00garbage" * 200)  # corrupt
    (root / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not audio")  # ignored
    return root


def scan_json(*args):
    result = runner.invoke(app, ["scan", *map(str, args), "--json"])
    data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result, data


def rows_by_name(library):
    with Catalog.open(library, readonly=True) as cat:
        return {os.path.basename(t.path): t for t in cat.all_tracks()}


@pytest.fixture
def library(tiny_env):
    return tiny_env / "library"


def test_scan_rescan_move_delete_and_search(tiny_env, tmp_path, library):
    music = make_library(tmp_path / "music")

    # --- dry run: lists the plan, writes nothing
    result = runner.invoke(app, ["scan", str(music), "--dry-run", "--json"])
    plan = json.loads(result.stdout)
    assert plan["dry_run"] and plan["new"] == 8 and not (library / "catalog.sqlite").exists()
    assert {os.path.basename(p["path"]) for p in plan["planned"]} >= {"t0.flac", "broken.flac"}

    # --- first scan: 7 embedded, the corrupt file recorded, exit code 1
    result, s = scan_json(music)
    assert result.exit_code == 1, result.output
    assert (s["new"], s["failed"], s["unchanged"], s["embedded"]) == (7, 1, 0, 7)
    assert [os.path.basename(f["path"]) for f in s["failures"]] == ["broken.flac"]
    assert s["failures"][0]["reason"]
    rows = rows_by_name(library)
    assert "cover.jpg" not in rows
    assert rows["broken.flac"].status == "failed" and rows["broken.flac"].error
    for name, tags in ODD.items():
        row = rows[os.path.basename(name)]
        assert row.status == "ok" and row.n_windows == 1 and row.duration > 2.5
        for field, value in tags.items():
            assert getattr(row, field) == value, (name, field)
    assert rows["t5.opus"].path.endswith("Música/日本/t5.opus")
    assert rows["t0.flac"].content_hash == rows["copy of t0.flac"].content_hash

    # --- status
    st = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert st["counts"] == {"ok": 7, "instrumental": 0, "failed": 1, "removed": 0}
    assert st["index"]["state"] == "ok" and st["model_key"] == st["configured_model"]
    assert st["last_scan"]["summary"]["new"] == 7
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0 and "7 ok" in table.stdout and str(library) in table.stdout

    # --- find-covers on a library file: itself excluded, its exact copy marked
    out = json.loads(runner.invoke(app, ["find-covers", str(music / "t0.flac"), "--json", "-k", "3"]).stdout)
    assert out["in_library"] and len(out["results"]) == 3
    names = [os.path.basename(r["path"]) for r in out["results"]]
    assert "t0.flac" not in names
    assert names[0] == "copy of t0.flac" and out["results"][0]["duplicate"] == "same file"
    assert out["results"][0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    sims = [r["similarity"] for r in out["results"]]
    assert sims == sorted(sims, reverse=True)
    cut = json.loads(runner.invoke(app, ["find-covers", str(music / "t0.flac"), "--json",
                                         "--min-similarity", "0.99999"]).stdout)
    assert [os.path.basename(r["path"]) for r in cut["results"]] == ["copy of t0.flac"]
    shown = runner.invoke(app, ["find-covers", str(music / "t1.mp3")])
    assert shown.exit_code == 0 and "Song [Live]" in shown.stdout and "Smith, John" in shown.stdout
    assert "exact copy (same file)" in runner.invoke(app, ["find-covers", str(music / "t0.flac"), "-k", "2"]).stdout

    # --- rescan with nothing changed: nothing decoded or even hashed
    def tripwire(*a, **k):
        raise AssertionError("an unchanged rescan must not read audio")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("livi_cli.audio.decode.load_audio", tripwire)
        mp.setattr("livi_cli.library.plan.content_hash", tripwire)
        result, s = scan_json(music)
    assert result.exit_code == 0, result.output
    assert (s["unchanged"], s["new"], s["updated"], s["embedded"], s["failed"], s["still_failed"]) == (7, 0, 0, 0, 0, 1)
    assert s["index"] == "unchanged"

    # --- move one, delete one, touch one, change one
    before = rows_by_name(library)
    with Catalog.open(library, readonly=True) as cat:
        vec_t1 = cat.track_vector(before["t1.mp3"].id)
        emb_ids_before = set(cat.index_entries()[0].tolist())
    (music / "sub").mkdir()
    os.rename(music / "t1.mp3", music / "sub" / "renamed t1.mp3")
    os.remove(music / "t2.ogg")
    os.utime(music / "t3.wav", ns=(time.time_ns(), time.time_ns() + 10**9))
    write_track(music / "t4.m4a", seconds=3, seed=40, title="Näive, 日本語 (remaster)")
    result, s = scan_json(music)
    assert result.exit_code == 0, result.output
    assert (s["moved"], s["removed"], s["updated"], s["new"], s["embedded"]) == (1, 1, 1, 0, 1)
    assert (s["unchanged"], s["still_failed"]) == (4, 1)  # t0, its copy, t5 and t3 (touched: same bytes)
    after = rows_by_name(library)
    assert after["renamed t1.mp3"].id == before["t1.mp3"].id and "t1.mp3" not in after
    assert after["t2.ogg"].status == "removed"
    assert after["t4.m4a"].title == "Näive, 日本語 (remaster)" and after["t4.m4a"].id == before["t4.m4a"].id
    with Catalog.open(library, readonly=True) as cat:
        np.testing.assert_array_equal(cat.track_vector(after["renamed t1.mp3"].id), vec_t1)
        emb_ids_after = set(cat.index_entries()[0].tolist())
        assert index.health(cat).state == "ok"
    assert len(emb_ids_before - emb_ids_after) == 2  # t2 removed, t4 re-embedded; t1's vector kept its id
    out = json.loads(runner.invoke(app, ["find-covers", str(music / "t0.flac"), "--json", "-k", "20"]).stdout)
    assert "t2.ogg" not in {os.path.basename(r["path"]) for r in out["results"]}
    assert len(out["results"]) == 5

    # --- a file from outside the library: embedded on the fly, added only with --add
    outside = write_track(tmp_path / "elsewhere" / "query.wav", seconds=3, seed=77, title="Outsider")
    out = json.loads(runner.invoke(app, ["find-covers", str(outside), "--json"]).stdout)
    assert not out["in_library"] and not out["added"] and len(out["results"]) == 6
    assert "query.wav" not in rows_by_name(library)
    result = runner.invoke(app, ["find-covers", str(outside), "--add", "--json"])
    assert json.loads(result.stdout)["added"]
    assert rows_by_name(library)["query.wav"].title == "Outsider"
    again = json.loads(runner.invoke(app, ["find-covers", str(outside), "--json"]).stdout)
    assert again["in_library"] and "query.wav" not in {os.path.basename(r["path"]) for r in again["results"]}

