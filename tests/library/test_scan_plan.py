"""Incremental scan decisions through api.scan: copies, restores, moves across roots, changed-then-failed."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from livi_cli import api
from livi_cli.library.catalog import Catalog
from tests.synth import write_track


@pytest.fixture
def env(tiny_env, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVI_VOCAL_DETECTOR", "none")
    a, b = tmp_path / "a", tmp_path / "b"
    for i in range(2):
        write_track(a / f"a{i}.flac", seconds=3, seed=300 + i, title=f"A{i}")
    write_track(b / "b0.wav", seconds=3, seed=310)
    return api.settings(), a, b


def vectors(s):
    with Catalog.open(s.library, readonly=True) as cat:
        return {os.path.basename(t.path): (t.id, t.status, cat.track_vector(t.id)) for t in cat.all_tracks()}


def test_copy_restore_and_move_across_roots(env):
    s, a, b = env
    first = api.scan([a, b], s)
    assert first.new == 3 and first.embedded == 3
    before = vectors(s)

    # a copy of a known file arrives: it gets the vectors without being decoded
    shutil.copy2(a / "a0.flac", b / "a0 copy.flac")
    summary = api.scan([b], s)
    assert (summary.new, summary.embedded, summary.unchanged) == (1, 0, 1)
    now = vectors(s)
    np.testing.assert_array_equal(now["a0 copy.flac"][2], before["a0.flac"][2])

    # scanning only root b leaves root a's tracks alone (not removed)
    assert now["a1.flac"][1] == "ok"

    # a file moved from root a into root b, scanning b only: recognised (its old path is gone)
    os.rename(a / "a1.flac", b / "a1 moved.flac")
    summary = api.scan([b], s)
    assert (summary.moved, summary.embedded, summary.removed) == (1, 0, 0)
    now = vectors(s)
    assert now["a1 moved.flac"][0] == before["a1.flac"][0] and "a1.flac" not in now

    # a deleted file is marked removed, then restored from a backup: active again, not re-embedded
    data = (b / "b0.wav").read_bytes()
    os.remove(b / "b0.wav")
    assert api.scan([b], s).removed == 1
    assert vectors(s)["b0.wav"][1] == "removed"
    (b / "b0.wav").write_bytes(data)
    summary = api.scan([b], s)
    assert (summary.new, summary.embedded) == (1, 0)
    assert vectors(s)["b0.wav"][1] == "ok"


def test_changed_file_that_breaks_is_recorded_as_failed(env):
    s, a, b = env
    api.scan([a], s)
    (a / "a0.flac").write_bytes(b"fLaC" + b"\x00" * 300)  # the user's file got truncated
    summary = api.scan([a], s)
    assert summary.failed == 1 and summary.failures[0].path.endswith("a0.flac")
    assert vectors(s)["a0.flac"][1] == "failed"
    with Catalog.open(s.library, readonly=True) as cat:
        assert len(cat.embeddings()[0]) == 1  # its old vector is gone with it
    again = api.scan([a], s)
    assert (again.failed, again.still_failed, again.unchanged) == (0, 1, 1)


def test_failure_reasons_are_one_line_and_name_the_file(env, monkeypatch):
    from livi_cli.embed import Embedder

    s, a, b = env
    real = Embedder.prepare_path

    def prepare_path(self, path, keep_wave=False):  # an unexpected error with a multi-line message
        if str(path).endswith("a1.flac"):
            raise ValueError("bad frame\n  at offset 12\n")
        return real(self, path, keep_wave)

    monkeypatch.setattr(Embedder, "prepare_path", prepare_path)
    summary = api.scan([a], s)
    assert summary.failed == 1 and summary.embedded == 1
    failure = summary.failures[0]
    assert failure.path == str(a / "a1.flac") and failure.reason == "ValueError: bad frame at offset 12"
    assert vectors(s)["a1.flac"][1] == "failed"
