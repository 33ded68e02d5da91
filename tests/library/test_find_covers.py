"""find-covers edge cases through the Python API: a changed library file, --add of an instrumental file,
and paths given with "~"."""
from __future__ import annotations

import os

import pytest

from livi_cli import api
from livi_cli.library.catalog import Catalog
from tests.synth import write_track


@pytest.fixture
def lib(tiny_env, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVI_VOCAL_DETECTOR", "none")  # synthetic melodies: plain windows make them embeddable
    music = tmp_path / "music"
    for i in range(3):
        write_track(music / f"s{i}.flac", seconds=3, seed=400 + i, title=f"S{i}")
    s = api.settings()
    assert api.scan([music], s).embedded == 3
    return s, music


def row_of(s, path):
    with Catalog.open(s.library, readonly=True) as cat:
        return cat.track_by_path(path)


def test_a_library_file_changed_since_the_scan_is_not_its_own_match(lib):
    s, music = lib
    own = row_of(s, music / "s0.flac")
    write_track(music / "s0.flac", seconds=3, seed=499, title="S0 remastered")  # new bytes, not rescanned
    result = api.find_covers(music / "s0.flac", s, k=10)
    assert not result.in_library and result.track_id == own.id  # embedded on the fly
    assert own.id not in {m.track.id for m in result.matches}  # its stale row is the file itself
    assert len(result.matches) == 2


def test_add_stores_an_instrumental_file_too(lib, tmp_path):
    s, _ = lib
    outside = write_track(tmp_path / "elsewhere" / "inst.wav", seconds=3, seed=450)
    voiced = api.settings(vocal_detector="default")  # the real detector: a synthetic melody has no voice
    result = api.find_covers(outside, voiced, add=True)
    assert result.instrumental and "instrumental" in result.notice and result.matches == []
    assert result.added
    row = row_of(s, outside)
    assert row is not None and row.id == result.track_id and row.status == "instrumental"
    again = api.find_covers(outside, s)  # now answered from the library
    assert again.in_library and again.instrumental


def test_paths_with_a_tilde_are_expanded(lib, tmp_path, monkeypatch):
    s, music = lib
    monkeypatch.setenv("HOME", str(tmp_path))
    summary = api.scan(["~/music"], s)
    assert summary.unchanged == 3 and summary.removed == 0
    result = api.find_covers("~/music/s1.flac", s, k=1)
    assert result.in_library and result.query == os.path.join(str(music), "s1.flac")
