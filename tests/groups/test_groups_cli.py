"""`livi clusters` and `livi duplicates` through the CLI on fabricated catalogs with known answers."""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from typer.testing import CliRunner

from bench.bench_groups import song_versions
from livi_cli import api
from livi_cli.audio.decode import load_audio
from livi_cli.cli.app import app
from livi_cli.cli.groups_cmd import CLUSTER_COLUMNS, DUPLICATE_COLUMNS
from livi_cli.errors import LibraryError, ModelMismatchError
from livi_cli.groups.fingerprint import fingerprint
from livi_cli.library.catalog import Catalog
from tests.groups.test_clusters import full, gram_vectors

runner = CliRunner()
ODD_TITLE = 'Song, "One" [Live]'
ODD_ARTIST = "Smith, John"
ODD_ALBUM = "Line one\nLine two, [Bonus]"


def fabricate(library: Path, key: str, items: list[dict]) -> dict[str, int]:
    """Insert tracks through the Catalog API; returns name → track id."""
    ids = {}
    with Catalog.open(library) as cat, cat.transaction():
        cat.set_model_key(key)
        for it in items:
            tags = {"title": it.get("title", it["name"]), "artist": it.get("artist"), "album": it.get("album"),
                    "duration": it.get("duration", 200.0), "codec": it.get("codec", "flac"),
                    "bitrate": it.get("bitrate", 900_000), "sample_rate": it.get("sample_rate", 44_100)}
            tid = cat.upsert_track(library.parent / "music" / it["name"], size=it.get("size", 5_000_000),
                                   mtime_ns=0, content_hash=it.get("hash", f"h-{it['name']}"), tags=tags,
                                   status=it.get("status", "ok"), fingerprint=it.get("fp"))
            vec = it.get("vec")
            if vec is not None:
                cat.set_embedding(tid, key, vec, vec[None], [(0.0, 30.0)], len(vec))
            ids[it["name"]] = tid
    return ids


@pytest.fixture
def lib(tiny_env):
    return tiny_env / "library"


@pytest.fixture
def key(tiny_env):
    return api.current_model_key(api.settings())


@pytest.fixture
def cover_library(lib, key):
    chain = [[1, 0.82, 0.30], [0.82, 1, 0.78], [0.30, 0.78, 1]]
    v = gram_vectors([full(3, 0.9), chain, full(2, 0.8), np.eye(2)])
    items = [
        dict(name="x1.flac", vec=v[0], title=ODD_TITLE, artist=ODD_ARTIST, album=ODD_ALBUM, hash="same"),
        dict(name="zz-copy/x1.flac", vec=v[0], title=ODD_TITLE, artist=ODD_ARTIST, album=ODD_ALBUM, hash="same"),
        dict(name="x2.mp3", vec=v[1], title="Song One", artist="Band B"),
        dict(name="x3.ogg", vec=v[2], title="Song One (Acoustic)", artist="Band C"),
        dict(name="a.flac", vec=v[3], title="Chain A"),
        dict(name="b.flac", vec=v[4], title="Chain B"),
        dict(name="c.flac", vec=v[5], title="Chain C"),
        dict(name="y1.flac", vec=v[6], title="Other", artist="Y"),
        dict(name="y2.flac", vec=v[7], title="Other (Live)", artist="Y"),
        dict(name="z1.flac", vec=v[8]),
        dict(name="z2.flac", vec=v[9]),
        dict(name="instrumental.flac", status="instrumental"),
    ]
    return fabricate(lib, key, items)


def parse_csv(text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames) == CLUSTER_COLUMNS or tuple(reader.fieldnames) == DUPLICATE_COLUMNS
    return list(reader)


def test_clusters_csv_exact_grouping_and_fields(cover_library, lib):
    ids = cover_library
    result = runner.invoke(app, ["clusters", "--export", "csv"])
    assert result.exit_code == 0, result.output
    rows = parse_csv(result.stdout)
    by_cluster: dict[str, list[int]] = {}
    for r in rows:
        by_cluster.setdefault(r["cluster_id"], []).append(int(r["track_id"]))
    # X (3 recordings; its byte-identical copy is folded), then the chain pair (0.82) before Y (0.80);
    # C is not pulled in through B, singles are not clusters
    assert by_cluster == {"1": [ids["x1.flac"], ids["x2.mp3"], ids["x3.ogg"]],
                          "2": [ids["a.flac"], ids["b.flac"]], "3": [ids["y1.flac"], ids["y2.flac"]]}
    first = rows[0]
    assert first == {"cluster_id": "1", "cluster_size": "3", "track_id": str(ids["x1.flac"]),
                     "path": str(lib.parent / "music" / "x1.flac"), "title": ODD_TITLE, "artist": ODD_ARTIST,
                     "album": ODD_ALBUM, "duration": "200", "similarity_to_medoid": "1", "duplicate_of": ""}
    assert rows[1]["similarity_to_medoid"] == "0.9" and rows[1]["cluster_size"] == "3"
    assert rows[3]["similarity_to_medoid"] == "1" and rows[4]["similarity_to_medoid"] == "0.82"
    assert all(r["duplicate_of"] == "" for r in rows)


def test_clusters_include_duplicates_json_and_file(cover_library, tmp_path):
    ids = cover_library
    out = tmp_path / "out" / "clusters.json"
    result = runner.invoke(app, ["clusters", "--include-duplicates", "--export", "json", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [c["cluster_id"] for c in data] == [1, 2, 3]
    x = data[0]
    assert x["cluster_size"] == 3 and x["medoid_track_id"] == ids["x1.flac"]
    assert x["cohesion"] == pytest.approx(0.9, abs=1e-4)
    members = x["members"]
    assert [m["track_id"] for m in members] == [ids["x1.flac"], ids["zz-copy/x1.flac"], ids["x2.mp3"], ids["x3.ogg"]]
    assert members[0]["copies"] == [ids["zz-copy/x1.flac"]] and members[0]["duplicate_of"] is None
    assert members[1]["duplicate_of"] == ids["x1.flac"] and members[1]["similarity_to_medoid"] == 1.0
    assert members[0]["album"] == ODD_ALBUM and members[0]["title"] == ODD_TITLE


def test_table_cap_without_limit(cover_library, monkeypatch):
    from livi_cli.cli import groups_cmd

    monkeypatch.setattr(groups_cmd, "TABLE_CAP", 1)
    res = runner.invoke(app, ["clusters"])
    assert "Cluster 1:" in res.stdout and "Cluster 2:" not in res.stdout
    assert "showing the first 1 of 3 clusters" in res.stderr
    res = runner.invoke(app, ["clusters", "--limit", "2"])
    assert "Cluster 2:" in res.stdout and "showing" not in res.stderr
    assert len(parse_csv(runner.invoke(app, ["clusters", "--export", "csv"]).stdout)) == 7  # exports: all


def test_clusters_options_and_table(cover_library):
    ids = cover_library
    res = runner.invoke(app, ["clusters", "--query", "band c", "--export", "json"])
    assert [c["cluster_id"] for c in json.loads(res.stdout)] == [1]  # ids keep their global numbering
    res = runner.invoke(app, ["clusters", "--query", "other", "--export", "json"])
    assert [c["cluster_id"] for c in json.loads(res.stdout)] == [3]
    res = runner.invoke(app, ["clusters", "--limit", "1", "--export", "csv"])
    assert {r["cluster_id"] for r in parse_csv(res.stdout)} == {"1"}
    res = runner.invoke(app, ["clusters", "--min-size", "3", "--export", "csv"])
    assert {r["cluster_id"] for r in parse_csv(res.stdout)} == {"1"}
    res = runner.invoke(app, ["clusters", "--min-similarity", "0.85", "--export", "csv"])
    assert [int(r["track_id"]) for r in parse_csv(res.stdout)] == [ids["x1.flac"], ids["x2.mp3"], ids["x3.ogg"]]
    res = runner.invoke(app, ["clusters"])
    assert res.exit_code == 0
    assert "Cluster 1: 3 recordings" in res.stdout and ODD_TITLE in res.stdout and "+1 copy" in res.stdout
    assert "Chain C" not in res.stdout
    res = runner.invoke(app, ["clusters", "--query", "nothing like this"])
    assert res.exit_code == 0 and "no cover clusters" in res.stderr
    res = runner.invoke(app, ["clusters", "--export", "xml"])
    assert res.exit_code == 1 and "unknown format" in str(res.exception)


def test_refuses_other_model_and_empty_library(lib, key, tiny_env, monkeypatch, capsys):
    res = runner.invoke(app, ["clusters"])
    assert isinstance(res.exception, LibraryError) and "no library" in str(res.exception)
    with Catalog.open(lib):
        pass
    for cmd in ("clusters", "duplicates"):
        res = runner.invoke(app, [cmd])
        assert isinstance(res.exception, LibraryError) and "empty" in str(res.exception), cmd
    fabricate(lib, "other-whisper@abc|head:0123|d32", [dict(name="a.flac", vec=np.eye(32, dtype=np.float32)[0])])
    for cmd in ("clusters", "duplicates"):
        res = runner.invoke(app, [cmd])
        assert isinstance(res.exception, ModelMismatchError), cmd
        assert "other-whisper@abc" in str(res.exception) and key in str(res.exception)
    # the console-script entry turns it into one line on stderr and exit code 1
    from livi_cli.cli.app import main

    monkeypatch.setattr(sys, "argv", ["livi", "clusters"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- duplicates
def _fp_of(wave44: np.ndarray, path: Path, **write) -> bytes:
    sf.write(path, wave44, 44_100, **write)
    return fingerprint(load_audio(path))


@pytest.fixture(scope="module")
def audio_fps(tmp_path_factory):
    """Fingerprints of one song as flac / mp3 320 / mp3 ~64 at 22 kHz, its cover and live take, another song."""
    d = tmp_path_factory.mktemp("fp")
    a, b = song_versions(0, n_notes=14), song_versions(1, n_notes=14, kinds=("orig",))
    return {
        "flac": _fp_of(a["orig"], d / "a.flac"),
        "mp3": _fp_of(a["orig"], d / "a.mp3", format="MP3", compression_level=0.0, bitrate_mode="CONSTANT"),
        "mp3lo": fingerprint(load_audio(_write_lo(a["orig"], d))),
        "cover": _fp_of(a["cover"], d / "cover.flac"),
        "live": _fp_of(a["live"], d / "live.flac"),
        "other": _fp_of(b["orig"], d / "b.flac"),
    }


def _write_lo(wave44: np.ndarray, d: Path) -> Path:
    path = d / "a.lo.mp3"
    sf.write(path, soxr.resample(wave44, 44_100, 22_050), 22_050, format="MP3", compression_level=0.8,
             bitrate_mode="CONSTANT")
    return path


@pytest.fixture
def dup_library(lib, key, audio_fps):
    f = audio_fps
    items = [
        dict(name="a.flac", fp=f["flac"], hash="A", title=ODD_TITLE, artist=ODD_ARTIST, album=ODD_ALBUM),
        dict(name="keep-here/a.flac", fp=None, hash="A", title=ODD_TITLE, artist=ODD_ARTIST, album=ODD_ALBUM),
        dict(name="a.mp3", fp=f["mp3"], codec="mp3", bitrate=320_000, size=4_000_000, title="Song One"),
        dict(name="a.lo.mp3", fp=f["mp3lo"], codec="mp3", bitrate=64_000, sample_rate=22_050, size=900_000),
        dict(name="cover.flac", fp=f["cover"], title=ODD_TITLE),
        dict(name="live.flac", fp=f["live"], title=ODD_TITLE),
        dict(name="b.flac", fp=f["other"]),
    ]
    return fabricate(lib, key, items)


def test_duplicates_groups_keep_order_and_csv(dup_library, lib):
    ids = dup_library
    res = runner.invoke(app, ["duplicates", "--export", "csv"])
    assert res.exit_code == 0, res.output
    rows = parse_csv(res.stdout)
    assert [int(r["track_id"]) for r in rows] == [ids["a.flac"], ids["keep-here/a.flac"], ids["a.mp3"], ids["a.lo.mp3"]]
    assert [r["keep"] for r in rows] == ["true", "false", "false", "false"]
    assert {r["group_id"] for r in rows} == {"1"} and {r["group_size"] for r in rows} == {"4"}
    keep, copy, mp3, lo = rows
    assert keep["path"] == str(lib.parent / "music" / "a.flac") and keep["match"] == "keep"
    assert keep["title"] == ODD_TITLE and keep["artist"] == ODD_ARTIST and keep["album"] == ODD_ALBUM
    assert keep["lossless"] == "true" and keep["codec"] == "flac" and keep["keep_reason"] == "path order"
    assert copy["match"] == "identical file" and copy["similarity_to_kept"] == "1" and copy["keep_reason"] == ""
    assert mp3["codec"] == "mp3" and mp3["lossless"] == "false" and mp3["bitrate"] == "320000"
    assert mp3["match"].startswith("audio ") and float(mp3["similarity_to_kept"]) > 0.7
    assert lo["sample_rate"] == "22050" and lo["size"] == "900000" and lo["duration"] == "200"
    assert keep["tags_agree"] == "false"  # "Song One" on the mp3: tags differ, audio decides


def test_duplicates_prefer_json_and_table(dup_library, lib):
    ids = dup_library
    res = runner.invoke(app, ["duplicates", "--prefer", str(lib.parent / "music" / "keep-here"), "--export", "json"])
    (group,) = json.loads(res.stdout)
    assert group["keep_track_id"] == ids["keep-here/a.flac"] and group["keep_reason"] == "preferred path"
    assert [m["keep"] for m in group["members"]] == [True, False, False, False]
    assert group["members"][0]["album"] == ODD_ALBUM
    res = runner.invoke(app, ["duplicates"])
    assert res.exit_code == 0
    out = res.stdout
    assert "Group 1: 4 copies" in out and "320 kbps" in out and "22050 Hz" in out and "identical file" in out
    assert "cover.flac" not in out and "live.flac" not in out
    assert "never deletes" in res.stderr


def test_scanned_synthetic_library(tiny_env, tmp_path, monkeypatch):
    """Real scan with the tiny models: a transcoded + resampled copy and a byte copy are found."""
    import shutil

    monkeypatch.setenv("LIVI_VOCAL_DETECTOR", "none")  # synthetic tunes have no voice
    music = tmp_path / "music"
    music.mkdir()
    v = song_versions(2, n_notes=12, kinds=("orig", "cover"))
    sf.write(music / "song.flac", v["orig"], 44_100)
    sf.write(music / "song.mp3", soxr.resample(v["orig"], 44_100, 32_000), 32_000, format="MP3",
             compression_level=0.5)
    shutil.copy(music / "song.flac", music / "song copy.flac")
    sf.write(music / "cover.flac", v["cover"], 44_100)
    sf.write(music / "other.ogg", song_versions(3, n_notes=12, kinds=("orig",))["orig"], 44_100, format="OGG",
             subtype="VORBIS")
    res = runner.invoke(app, ["scan", str(music)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["duplicates", "--export", "json"])
    assert res.exit_code == 0, res.output
    (group,) = json.loads(res.stdout)
    names = [Path(m["path"]).name for m in group["members"]]
    assert names[0] in ("song.flac", "song copy.flac") and sorted(names[1:]) == sorted(
        {"song.flac", "song copy.flac", "song.mp3"} - {names[0]})
    # clusters run from the stored vectors; the byte copy is always folded into its original
    res = runner.invoke(app, ["clusters", "--min-similarity", "-1", "--export", "json"])
    assert res.exit_code == 0, res.output
    names = [Path(m["path"]).name for c in json.loads(res.stdout) for m in c["members"]]
    assert len({"song.flac", "song copy.flac"} & set(names)) == 1


def test_clusters_prefer_accepts_a_relative_folder(cover_library, lib, monkeypatch):
    # the same relative --prefer works for clusters as for duplicates (resolved against the cwd)
    ids = cover_library
    monkeypatch.chdir(lib.parent)  # tracks are fabricated under lib.parent / "music"
    for cmd in ("clusters", "duplicates"):
        result = runner.invoke(app, [cmd, "--prefer", "music/zz-copy", "--export", "json"])
        assert result.exit_code == 0, result.output
        first = json.loads(result.stdout)[0]
        kept = first["medoid_track_id"] if cmd == "clusters" else first["keep_track_id"]
        assert kept == ids["zz-copy/x1.flac"], cmd


def test_output_dash_is_stdout_without_a_wrote_message(cover_library):
    result = runner.invoke(app, ["clusters", "--export", "csv", "--output", "-"])
    assert result.exit_code == 0, result.output
    assert len(parse_csv(result.stdout)) == 7
    assert "wrote" not in result.stderr


def test_infinite_duration_in_the_catalog_does_not_break_tables_or_json(lib, key):
    ids = fabricate(lib, key, [dict(name="a.flac", hash="same", duration=float("inf")),
                               dict(name="b.flac", hash="same", duration=float("inf"))])
    table = runner.invoke(app, ["duplicates"])
    assert table.exit_code == 0, table.output
    assert f"keep #{ids['a.flac']}" in table.stdout
    result = runner.invoke(app, ["duplicates", "--export", "json"])
    assert result.exit_code == 0, result.output
    assert "Infinity" not in result.stdout  # not valid JSON
    (group,) = json.loads(result.stdout)
    assert [m["duration"] for m in group["members"]] == [None, None]
