from pathlib import Path

import pytest

from livi_cli.errors import TrainingError
from livi_cli.train.teacher import TrackSpec, read_tracks


def test_csv_with_aliases_relative_paths_and_optional_clique(tmp_path):
    (tmp_path / "list.csv").write_text("Track_ID,File,Work\nx1,songs/a.flac,w1\nx2,/abs/b.mp3,\n", encoding="utf-8")
    assert read_tracks(tmp_path / "list.csv") == [
        TrackSpec("x1", tmp_path / "songs" / "a.flac", "w1"),
        TrackSpec("x2", Path("/abs/b.mp3"), None),
    ]
    (tmp_path / "paths.csv").write_text("path\na.wav\n")
    assert read_tracks(tmp_path / "paths.csv") == [TrackSpec("a.wav", tmp_path / "a.wav", None)]


@pytest.mark.parametrize("text, message", [
    ("id,clique\n1,a\n", "no 'path' column"),
    ("id,path\n1,a.wav\n1,b.wav\n", "line 3: duplicate id '1'"),
    ("id,path\n1,\n", "line 2: empty path"),
    ("id,path\n", "no tracks found"),
])
def test_bad_csv_names_the_file_and_line(tmp_path, text, message):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(TrainingError, match=message) as err:
        read_tracks(tmp_path / "t.csv")
    assert str(tmp_path / "t.csv") in str(err.value)


def test_folder_input_with_cliques_from_folders(tmp_path, make_audio):
    make_audio("lib/Yesterday/beatles.wav", seconds=0.5)
    make_audio("lib/Yesterday/cover.wav", seconds=0.5, seed=1)
    make_audio("lib/loose.wav", seconds=0.5, seed=2)
    (tmp_path / "lib" / "notes.txt").write_text("not audio")
    specs = read_tracks(tmp_path / "lib", cliques_from_folders=True)
    assert [(s.id, s.clique) for s in specs] == [("loose.wav", None), ("Yesterday/beatles.wav", "Yesterday"),
                                                 ("Yesterday/cover.wav", "Yesterday")]
    assert all(s.clique is None for s in read_tracks(tmp_path / "lib"))
    with pytest.raises(TrainingError, match="no such file"):
        read_tracks(tmp_path / "missing")
