"""Duplicate pairs on a small generated set (the bench's generator), keep ranking, and exports."""
from __future__ import annotations

import csv
import io
import itertools
import json
from types import SimpleNamespace

import pytest

from bench.bench_groups import duplicate_pr, make_set, pair_scores
from livi_cli import export
from livi_cli.groups import duplicates as D


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("dupset")
    paths, labels = make_set(root, 2, n_notes=14)
    fps, _ = pair_scores(paths)
    return paths, labels, fps


def test_precision_recall_targets(generated):
    paths, labels, fps = generated
    pr = duplicate_pr(paths, labels, fps)
    assert pr["pairs_true"] == 2 * 15  # 6 copies per song
    assert pr["precision"] >= 0.99, pr["false_pairs"]
    assert pr["recall"] >= 0.95, pr["missed_pairs"]


def test_inverted_index_finds_every_true_pair(generated):
    paths, labels, fps = generated
    decoded = D._decode_all([D.Candidate(i, None, fp) for i, fp in enumerate(fps)])
    found = {tuple(p) for p in D.candidate_pairs(decoded).tolist()}
    truth = {(i, j) for i, j in itertools.combinations(range(len(paths)), 2) if labels[i] == labels[j]}
    assert truth <= found
    assert len(found) < 3 * len(truth)  # pruning: far fewer than all pairs


def test_hash_groups_without_fingerprints_and_bad_blobs():
    cands = [D.Candidate(1, "h", None), D.Candidate(2, "h", b"garbage"), D.Candidate(3, "x", None),
             D.Candidate(4, None, None)]
    assert D.find_duplicate_groups(cands) == [[1, 2]]


def _row(**kw):
    base = dict(id=0, path="/m/a", codec="mp3", bitrate=128_000, sample_rate=44_100, duration=200.0,
                content_hash=None, fingerprint=None, title="t")
    return SimpleNamespace(**(base | kw))


def test_keep_rank_order(tmp_path):
    flac = _row(id=1, codec="flac", bitrate=700_000, path="/m/z.flac")
    mp3_hi = _row(id=2, bitrate=320_000)
    mp3_hi_48k = _row(id=3, bitrate=320_000, sample_rate=48_000)
    mp3_hi_longer = _row(id=4, bitrate=320_000, duration=201.0)
    pref = _row(id=5, bitrate=128_000, path=str(tmp_path / "best" / "a.mp3"))
    plain = _row(id=6, bitrate=128_000, path="/m/a.mp3")
    rows = [plain, pref, mp3_hi_longer, mp3_hi_48k, mp3_hi, flac]
    ranked = sorted(rows, key=lambda t: D.keep_rank(t, [tmp_path / "best"]))
    assert [t.id for t in ranked] == [1, 3, 4, 2, 5, 6]
    assert D.keep_reason(flac, mp3_hi) == "lossless"
    assert D.keep_reason(mp3_hi_48k, mp3_hi) == "higher sample rate"
    assert D.keep_reason(pref, plain, [tmp_path / "best"]) == "preferred path"
    assert D.is_lossless(None, "/x/a.FLAC") and not D.is_lossless("vorbis")


def test_export_csv_and_json_survive_odd_text(tmp_path):
    rows = [{"a": 'x, "y"\nz', "b": None, "c": 0.123456, "d": True}, {"a": "[Live] ü 日本", "b": 3}]
    text = export.csv_text(["a", "b", "c", "d"], rows)
    back = list(csv.DictReader(io.StringIO(text)))
    assert back == [{"a": 'x, "y"\nz', "b": "", "c": "0.1235", "d": "true"},
                    {"a": "[Live] ü 日本", "b": "3", "c": "", "d": ""}]
    out = tmp_path / "x.csv"
    export.export("csv", ["a", "b", "c", "d"], rows, out)
    assert out.read_bytes() == text.encode("utf-8")
    export.export("json", [], rows, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))[1]["a"] == "[Live] ü 日本"
    with pytest.raises(Exception, match="unknown format"):
        export.check_format("yaml")
