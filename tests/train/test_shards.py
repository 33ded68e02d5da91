import json

import numpy as np
import pytest

from livi_cli.errors import TrainingError
from livi_cli.train.shards import ShardSet, ShardStream, ShardWriter, TrackWindows, iter_windows


def _track(name, clique, k, frames=4, dim=6, target=3, value=None):
    v = float(value if value is not None else hash(name) % 100)
    return TrackWindows(name, clique, f"/music/{name}.flac", np.full((k, frames, dim), v, np.float32),
                        np.tile(np.eye(target, dtype=np.float32)[:1], (k, 1)),
                        [(30.0 * i, 30.0 * i + 30) for i in range(k)], [f"{name} words {i}" for i in range(k)], k + 1)


def _write(directory, tracks, shard_size=4):
    w = ShardWriter(directory, {"store": "states", "whisper": "w", "text_model": "t"}, shard_size)
    for t in tracks:
        w.add(t)
    w.close()
    return w


def test_round_trip_keeps_every_window_and_its_metadata(tmp_path):
    _write(tmp_path, [_track("a", "x", 3, value=1), _track("b", "x", 2, value=2), _track("c", None, 1, value=3)])
    s = ShardSet.open(tmp_path)
    assert s.manifest["dim_input"] == 6 and s.manifest["frames"] == 4 and s.manifest["dim_target"] == 3
    assert len(s.windows) == 6
    assert s.track_cliques() == {"a": "x", "b": "x", "c": None}
    rows = list(iter_windows(s, s.windows, shuffle=False))
    assert [w.track for _, _, w in rows] == ["a", "a", "a", "b", "b", "c"]
    assert [float(x[0, 0]) for x, _, _ in rows] == [1, 1, 1, 2, 2, 3]
    assert rows[0][0].dtype == np.float16 and rows[0][0].shape == (4, 6)
    index = [json.loads(line) for line in (tmp_path / "shard-000000.jsonl").read_text().splitlines()]
    assert index[1] == {"window": "a#1", "track": "a", "clique": "x", "row": 1, "start": 30.0, "end": 60.0, "text": "a words 1"}


def test_a_track_never_splits_across_shards(tmp_path):
    _write(tmp_path, [_track("a", "x", 3), _track("b", "x", 3), _track("c", "y", 3)], shard_size=4)
    s = ShardSet.open(tmp_path)
    shards_of = {}
    for w in s.windows:
        shards_of.setdefault(w.track, set()).add(w.shard)
    assert all(len(v) == 1 for v in shards_of.values())
    assert len({w.shard for w in s.windows}) == 2  # a+b fill shard 0 (6 >= 4), c goes to shard 1


def test_shuffle_is_a_seeded_permutation_of_each_epoch(tmp_path):
    _write(tmp_path, [_track(f"t{i}", f"c{i // 2}", 2, value=i) for i in range(12)], shard_size=4)
    s = ShardSet.open(tmp_path)
    order = lambda seed: [(w.track, w.row) for _, _, w in iter_windows(s, s.windows, shuffle=True, seed=seed, mix=2)]
    plain = [(w.track, w.row) for _, _, w in iter_windows(s, s.windows, shuffle=False)]
    assert sorted(order(1)) == sorted(plain) and len(order(1)) == 24
    assert order(1) == order(1)
    assert order(1) != order(2) and order(1) != plain
    # Two workers split the blocks between them without overlap.
    parts = [[(w.track, w.row) for _, _, w in iter_windows(s, s.windows, shuffle=True, seed=3, mix=1, worker=k, num_workers=2)]
             for k in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(plain) and parts[0] and parts[1]


def test_stream_yields_tensors_for_a_dataloader(tmp_path):
    import torch
    from torch.utils.data import DataLoader

    _write(tmp_path, [_track(f"t{i}", "c", 2) for i in range(5)])
    s = ShardSet.open(tmp_path)
    stream = ShardStream(s, s.select({"t0", "t3"}), shuffle=True, seed=0)
    batches = list(DataLoader(stream, batch_size=3))
    x, t, tracks = batches[0]
    assert x.shape == (3, 4, 6) and x.dtype == torch.float16 and t.shape == (3, 3)
    assert sorted(sum((list(b[2]) for b in batches), [])) == ["t0", "t0", "t3", "t3"]


def test_resume_skips_done_tracks_and_ignores_orphan_shards(tmp_path):
    w = _write(tmp_path, [_track("a", "x", 2), _track("b", "x", 2)], shard_size=2)
    w.skip("broken", None, "/music/broken.mp3", "failed", error="broken.mp3: bad header")
    w.skip("inst", None, "/music/inst.mp3", "instrumental", n_windows=3)
    # A crash after a shard was written but before its tracks were recorded: orphan files.
    orphan = ShardWriter(tmp_path, {"store": "states"}, shard_size=100)
    orphan._pending.append(_track("c", "y", 2, value=9))
    np.save(tmp_path / "shard-000002.inputs.npy", np.zeros((2, 4, 6), np.float16))
    (tmp_path / "shard-000002.jsonl").write_text(json.dumps({"track": "c", "row": 0, "clique": "y"}) + "\n")

    again = ShardWriter(tmp_path, {"store": "states", "whisper": "w", "text_model": "t"}, shard_size=2)
    assert again.done == {"a", "b", "inst"}  # failed tracks are retried, orphans are not done
    again.add(_track("c", "y", 2, value=5))
    again.close()
    assert not (tmp_path / "shard-000002.targets.npy").exists()  # the orphan number was not reused
    s = ShardSet.open(tmp_path)
    assert sorted(w.track for w in s.windows) == ["a", "a", "b", "b", "c", "c"]
    c_rows = [x for x, _, w in iter_windows(s, s.select({"c"}), shuffle=False)]
    assert [float(x[0, 0]) for x in c_rows] == [5, 5]
    assert s.tracks["inst"]["status"] == "instrumental" and s.tracks["broken"]["error"].startswith("broken.mp3")


def test_incompatible_resume_and_bad_folders_are_clear_errors(tmp_path):
    _write(tmp_path / "s", [_track("a", "x", 1)])
    with pytest.raises(TrainingError, match="text_model"):
        ShardWriter(tmp_path / "s", {"store": "states", "text_model": "other"})
    with pytest.raises(TrainingError, match="dim_input"):
        w = ShardWriter(tmp_path / "s", {"store": "states", "whisper": "w", "text_model": "t"})
        w.add(_track("z", "x", 1, dim=8))
    with pytest.raises(TrainingError, match="not a shard folder"):
        ShardSet.open(tmp_path)
    (tmp_path / "s" / "tracks.jsonl").write_text('{"track": "a", "status": "ok", "shard": 7}\n')
    with pytest.raises(TrainingError, match="shard-000007.jsonl"):
        ShardSet.open(tmp_path / "s")


def test_a_torn_last_line_is_tolerated(tmp_path):
    _write(tmp_path, [_track("a", "x", 1), _track("b", "x", 1)], shard_size=1)
    with open(tmp_path / "tracks.jsonl", "a") as f:
        f.write('{"track": "c", "sta')
    assert sorted(ShardSet.open(tmp_path).tracks) == ["a", "b"]
