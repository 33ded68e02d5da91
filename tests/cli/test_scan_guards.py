"""Scan guards: missing models, a concurrent writer, a model change, a damaged index, --force/--limit."""
from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from livi_cli.cli.app import app
from livi_cli.errors import LibraryLockedError, ModelMissingError
from livi_cli.library import index
from livi_cli.library.catalog import Catalog
from livi_cli.library.lock import WriterLock
from tests.synth import write_track

runner = CliRunner()


@pytest.fixture(autouse=True)
def plain_windows(tiny_env, monkeypatch):
    """Synthetic melodies have no voice: the real vocal detector would call them instrumental and embed
    nothing. Plain 30 s windows (detector 'none') make every test track embeddable."""
    monkeypatch.setenv("LIVI_VOCAL_DETECTOR", "none")


@pytest.fixture
def music(tmp_path):
    for i in range(3):
        write_track(tmp_path / "music" / f"song{i}.flac", seconds=3, seed=10 + i, title=f"Song {i}")
    return tmp_path / "music"


def scan(*args):
    result = runner.invoke(app, ["scan", *map(str, args), "--json"])
    return result, (json.loads(result.stdout) if result.stdout.startswith("{") else None)


def test_missing_model_stops_before_any_work(tiny_env, music, monkeypatch, tmp_path):
    monkeypatch.setenv("LIVI_WHISPER", str(tmp_path / "no-such-whisper"))
    result = runner.invoke(app, ["scan", str(music)])
    assert isinstance(result.exception, ModelMissingError)
    assert "no-such-whisper" in str(result.exception)
    assert not (tiny_env / "library").exists()  # nothing was created


def test_second_writer_is_refused_clearly(tiny_env, music, monkeypatch):
    monkeypatch.setenv("LIVI_LOCK_WAIT", "0.3")
    with WriterLock(tiny_env / "library", wait=0):  # as if another `livi scan` were running
        result = runner.invoke(app, ["scan", str(music)])
        assert isinstance(result.exception, LibraryLockedError)
        assert "busy: another livi process" in str(result.exception)
        # reading is never blocked by the writer lock
        assert runner.invoke(app, ["status", "--json"]).exit_code == 0
    result, s = scan(music)
    assert result.exit_code == 0 and s["new"] == 3


def test_model_change_reembeds_everything(tiny_env, music, monkeypatch, tmp_path):
    import torch

    from livi_cli.model.checkpoint import save_head
    from livi_cli.model.head import HeadConfig, LiviHead
    from tests.conftest import TINY_HEAD

    result, first = scan(music)
    assert first["new"] == 3 and not first["model_changed"]
    torch.manual_seed(5)
    other = tmp_path / "other_head.pt"
    save_head(other, LiviHead(HeadConfig(**TINY_HEAD)))
    monkeypatch.setenv("LIVI_HEAD", str(other))
    st = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert not st["model_matches"]
    # searching from outside with the new model refuses to mix spaces
    outside = write_track(tmp_path / "q.wav", seconds=3, seed=99)
    result = runner.invoke(app, ["find-covers", str(outside)])
    assert "re-embed" in str(result.exception)
    result, second = scan(music)
    assert result.exit_code == 0
    assert second["model_changed"] and second["updated"] == 3 and second["unchanged"] == 0
    assert second["model_key"] != first["model_key"]
    assert "differs" in result.stderr
    with Catalog.open(tiny_env / "library", readonly=True) as cat:
        assert cat.model_key() == second["model_key"] and cat.stale_embeddings() == 0
        assert len(cat.embeddings()[0]) == 3
        assert index.health(cat).state == "ok"
    result, third = scan(music)
    assert third["unchanged"] == 3 and not third["model_changed"]


def test_damaged_index_is_rebuilt_by_search_and_scan(tiny_env, music, monkeypatch):
    scan(music)
    lib = tiny_env / "library"
    monkeypatch.setenv("LIVI_EXACT_SEARCH_MAX", "0")  # force the hnswlib path on this small library
    (lib / index.INDEX_FILE).write_bytes(b"\x00" * 100)
    st = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert st["index"]["state"] == "corrupt" and st["search"] == "hnsw"
    out = json.loads(runner.invoke(app, ["find-covers", str(music / "song0.flac"), "--json"]).stdout)
    assert out["search"] == "hnsw" and len(out["results"]) == 2
    assert json.loads(runner.invoke(app, ["status", "--json"]).stdout)["index"]["state"] == "ok"
    (lib / index.INDEX_FILE).unlink()
    result, s = scan(music)
    assert s["index"] == "rebuilt" and s["unchanged"] == 3
    assert json.loads(runner.invoke(app, ["status", "--json"]).stdout)["index"]["state"] == "ok"


def test_force_and_limit(tiny_env, music):
    result, s = scan(music, "--limit", "2")
    assert s["new"] == 2
    result, s = scan(music)
    assert (s["new"], s["unchanged"]) == (1, 2)
    with Catalog.open(tiny_env / "library", readonly=True) as cat:
        ids_before = {t.path: t.id for t in cat.active_tracks()}
    result, s = scan(music, "--force")
    assert (s["updated"], s["unchanged"], s["embedded"]) == (3, 0, 3)
    with Catalog.open(tiny_env / "library", readonly=True) as cat:
        assert {t.path: t.id for t in cat.active_tracks()} == ids_before  # ids survive a forced re-embed


def test_dry_run_needs_no_model(tiny_env, music, monkeypatch, tmp_path):
    scan(music)
    (music / "song0.flac").unlink()
    write_track(music / "new.flac", seconds=3, seed=50)
    monkeypatch.setenv("LIVI_WHISPER", str(tmp_path / "no-such-whisper"))
    result, s = scan(music, "--dry-run")
    assert result.exit_code == 0, result.output
    assert (s["new"], s["removed"], s["unchanged"], s["updated"]) == (1, 1, 2, 0)
    assert {(p["action"], os.path.basename(p["path"])) for p in s["planned"]} == {("new", "new.flac"),
                                                                                 ("removed", "song0.flac")}
    table = runner.invoke(app, ["scan", str(music), "--dry-run"])
    assert "Would process" in table.stdout and "new.flac" in table.stdout


def test_missing_path_and_missing_library(tiny_env, tmp_path):
    result = runner.invoke(app, ["scan", str(tmp_path / "nope")])
    assert "no such file or folder" in str(result.exception)
    song = write_track(tmp_path / "x.wav", seconds=2)
    result = runner.invoke(app, ["find-covers", str(song)])
    assert "no library at" in str(result.exception)
    st = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert st["exists"] is False and st["counts"]["ok"] == 0


def test_instrumental_tracks_recorded_and_query_gets_a_notice(tiny_env, music, monkeypatch):
    monkeypatch.setenv("LIVI_VOCAL_DETECTOR", "default")  # the real detector: a synthetic melody has no voice
    result, s = scan(music)
    assert result.exit_code == 0 and (s["new"], s["instrumental"], s["windows"]) == (3, 3, 0)
    with Catalog.open(tiny_env / "library", readonly=True) as cat:
        rows = cat.active_tracks()
        assert {t.status for t in rows} == {"instrumental"}
        assert all(t.mean_vocalness is not None and t.mean_vocalness < 0.5 for t in rows)
        assert cat.embeddings()[0] == []
    result = runner.invoke(app, ["find-covers", str(music / "song0.flac")])
    assert result.exit_code == 0 and "instrumental" in result.stderr and "lyrics" in result.stderr
    assert result.stdout.strip() == ""  # no table of noise
    out = json.loads(runner.invoke(app, ["find-covers", str(music / "song0.flac"), "--json"]).stdout)
    assert out["instrumental"] and out["results"] == [] and "instrumental" in out["notice"]
    # --include-instrumental embeds them anyway (plain windows) and makes them searchable
    result, s = scan(music, "--include-instrumental", "--force")
    assert (s["updated"], s["instrumental"]) == (3, 3) and s["windows"] == 3
    out = json.loads(runner.invoke(app, ["find-covers", str(music / "song0.flac"), "--json"]).stdout)
    assert len(out["results"]) == 2


def test_model_lost_mid_scan_stops_instead_of_failing_every_file(tiny_env, music, tmp_path, monkeypatch,
                                                                  tiny_head_path):
    """A model problem met while encoding is not a per-file failure: the scan stops with the error."""
    import shutil

    from livi_cli import api
    from livi_cli.embed import Embedder

    head = tmp_path / "head-copy.pt"
    shutil.copy(tiny_head_path, head)
    monkeypatch.setenv("LIVI_HEAD", str(head))
    s = api.settings()
    emb = Embedder(s)
    emb.check_models()
    _ = emb.identity  # computed while the head is there, as at the start of a real scan
    head.unlink()  # the head vanishes before the encoder first loads
    with pytest.raises(ModelMissingError):
        api.scan([music], s, embedder=emb)
    with Catalog.open(s.library, readonly=True) as cat:
        assert cat.counts()["failed"] == 0
