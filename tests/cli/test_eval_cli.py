"""`livi eval` through the CLI: embedding columns, .npz files, per-query CSV, JSON, variants, audio."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from livi_cli.cli.app import app
from livi_cli.errors import EvalError
from livi_cli.evaluate import evaluate_retrieval, retrieval_metrics

GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "golden"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["eval", *map(str, args)], env={"COLUMNS": "200", "NO_COLOR": "1"})


def write_csv(path: Path, ids, cliques, emb=None, paths=None, clique_col="clique"):
    header = ["id", clique_col] + (["path"] if paths else []) + ([f"e{i}" for i in range(emb.shape[1])] if emb is not None else [])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i, (ident, c) in enumerate(zip(ids, cliques)):
            w.writerow([ident, c] + ([paths[i]] if paths else []) + ([repr(float(v)) for v in emb[i]] if emb is not None else []))
    return path


@pytest.fixture
def small_set(tmp_path):
    rng = np.random.default_rng(5)
    cliques = ["w1"] * 3 + ["w2"] * 2 + ["w3"] * 4 + ["solo"]
    centres = {c: rng.normal(size=6) for c in set(cliques)}
    emb = np.array([centres[c] + 1.2 * rng.normal(size=6) for c in cliques])
    ids = [f"t{i}" for i in range(len(cliques))]
    return ids, cliques, emb, write_csv(tmp_path / "set.csv", ids, cliques, emb)


def test_json_on_embedding_columns_equals_retrieval_metrics(small_set):
    ids, cliques, emb, csv_path = small_set
    result = invoke(csv_path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"] == "columns" and data["k"] == 100
    (variant,) = data["variants"]
    expected = retrieval_metrics(emb, cliques)
    for key in ("MR1", "HR1", "HR10", "HR100", "MAP10", "n_queries", "n_items"):
        assert variant["metrics"][key] == pytest.approx(expected[key], abs=1e-12), key
    assert variant["metrics"]["n_queries"] == 9  # the singleton is a distractor only
    assert variant["metrics"]["skipped_unreadable"] == 0


def test_golden_csv_table(tmp_path):
    result = invoke(GOLDEN / "metrics_items.csv")
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in result.stdout.splitlines()
             if line.count("│") == 3}
    assert lines["MR1 (lower is better)"] == "7.20"
    assert lines["HR@1"] == "0.5336" and lines["MAP@10"] == "0.4420"
    assert lines["queries"] == "223"


def test_per_query_csv(small_set, tmp_path):
    ids, cliques, emb, csv_path = small_set
    out = tmp_path / "pq.csv"
    assert invoke(csv_path, "--per-query", out, "--json").exit_code == 0
    rows = list(csv.DictReader(open(out)))
    report = evaluate_retrieval(emb, cliques)
    assert [r["id"] for r in rows] == [ids[q.index] for q in report.queries]
    assert "t9" not in {r["id"] for r in rows}  # the singleton is never a query
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for row, q in zip(rows, report.queries):
        i = ids.index(row["id"])
        assert int(row["first_rank"]) == q.first_rank
        assert row["clique"] == cliques[i] and row["first_relevant_id"] != row["id"]
        assert cliques[ids.index(row["first_relevant_id"])] == cliques[i]
        # the top false positive is the most similar track of another clique
        others = [j for j in range(len(ids)) if cliques[j] != cliques[i]]
        best = max(others, key=lambda j: x[i] @ x[j])
        assert row["top_fp_id"] == ids[best] and row["top_fp_clique"] == cliques[best]
        assert float(row["top_fp_similarity"]) == pytest.approx(x[i] @ x[best], abs=1e-6)
        assert int(row["n_relevant"]) == cliques.count(cliques[i]) - 1


def test_npz_keyed_by_id_with_windows_and_variants(tmp_path):
    # tracks with 1-3 windows; variants mean and max in one run; one id missing from the file
    rng = np.random.default_rng(1)
    cliques = ["a", "a", "b", "b", "c", "c", "d"]
    ids = [f"x{i}" for i in range(len(cliques))]
    windows = {ident: rng.normal(size=(1 + i % 3, 5)) for i, ident in enumerate(ids)}
    np.savez(tmp_path / "emb.npz", **{k: v for k, v in windows.items() if k != "x6"})
    csv_path = write_csv(tmp_path / "m.csv", ids, cliques, clique_col="work")
    result = invoke(csv_path, "--embeddings", tmp_path / "emb.npz", "--variant", "mean:aggregation=mean",
                    "--variant", "max:aggregation=max", "--json")
    assert result.exit_code == 0, result.output
    got = {v["name"]: v["metrics"] for v in json.loads(result.stdout)["variants"]}
    from livi_cli.evaluate import evaluate_windows

    kept = ids[:6]
    means = np.vstack([windows[i].mean(axis=0) for i in kept])
    assert got["mean"]["MR1"] == pytest.approx(retrieval_metrics(means, cliques[:6])["MR1"])
    assert got["max"]["MAP10"] == pytest.approx(evaluate_windows([windows[i] for i in kept], cliques[:6]).metrics["MAP10"])
    assert got["mean"]["skipped_missing"] == 1 and got["mean"]["n_items"] == 6


def test_npy_in_row_order(small_set, tmp_path):
    ids, cliques, emb, _ = small_set
    np.save(tmp_path / "e.npy", emb)
    csv_path = write_csv(tmp_path / "noemb.csv", ids, cliques)
    result = invoke(csv_path, "--embeddings", tmp_path / "e.npy", "--json", "--k", "5")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["variants"][0]["metrics"]
    assert metrics["HR5"] == pytest.approx(retrieval_metrics(emb, cliques, k=5)["HR5"])


@pytest.mark.parametrize("args, message", [
    (["--variant", "x:aggregation=max"], "needs window embeddings"),
    (["--variant", "x:precision=bf16"], "only apply when livi computes"),
    (["--variant", "x:colour=red"], "unknown key 'colour'"),
])
def test_variant_errors_name_the_problem(small_set, args, message):
    result = invoke(small_set[3], *args)
    assert result.exit_code != 0
    assert isinstance(result.exception, EvalError) and message in str(result.exception)


def test_bad_csv_is_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,genre\nx,rock\n")
    result = invoke(path)
    assert isinstance(result.exception, EvalError)
    assert "bad.csv" in str(result.exception) and "no clique column" in str(result.exception)


# ------------------------------------------------------------------ audio (tiny models) and catalog
@pytest.fixture
def audio_set(tmp_path, make_audio):
    """Two works with two versions each (same melody, FLAC vs WAV), one singleton, one broken file."""
    root = tmp_path / "audio"
    for name, seed in (("a0.flac", 0), ("a1.wav", 0), ("b0.flac", 1), ("b1.wav", 1), ("c0.flac", 2)):
        make_audio(f"audio/{name}", seconds=3.0, seed=seed)
    (root / "broken.mp3").write_bytes(b"not audio at all" * 10)
    rows = [("a0", "A", "a0.flac"), ("a1", "A", "a1.wav"), ("b0", "B", "b0.flac"), ("b1", "B", "b1.wav"),
            ("c0", "C", "c0.flac"), ("x", "C", "broken.mp3")]
    meta = tmp_path / "meta.csv"
    meta.write_text("id,clique_id,path\n" + "".join(f"{i},{c},{p}\n" for i, c, p in rows))
    return meta, root, rows


def test_computes_embeddings_with_the_current_model(tiny_env, audio_set, tmp_path):
    from livi_cli.embed import Embedder

    meta, root, rows = audio_set
    result = invoke(meta, "--audio-root", root, "--vocal-detector", "none", "--json",
                    "--variant", "mean:aggregation=mean", "--variant", "max:aggregation=max",
                    "--per-query", tmp_path / "pq.csv")
    assert result.exit_code == 0, result.output
    got = {v["name"]: v["metrics"] for v in json.loads(result.stdout)["variants"]}
    for metrics in got.values():
        assert metrics["skipped_unreadable"] == 1 and metrics["n_items"] == 5 and metrics["n_queries"] == 4
    assert "broken.mp3" in result.stderr  # the unreadable file is named once, with its reason
    assert result.stderr.count("broken.mp3") == 1
    # the same numbers as embedding the files directly and scoring them
    emb = Embedder(vocal_detector="none")
    tracks = [emb.embed_path(root / p) for _, _, p in rows[:5]]
    cliques = [c for _, c, _ in rows[:5]]
    expected = retrieval_metrics(np.vstack([t.vector for t in tracks]), cliques)
    for key in ("MR1", "HR1", "MAP10"):
        assert got["mean"][key] == pytest.approx(expected[key], abs=1e-9)
    assert got["mean"]["HR1"] == 1.0  # the same melody in another container is its nearest neighbour
    pq = list(csv.DictReader(open(tmp_path / "pq.csv")))
    assert {r["variant"] for r in pq} == {"mean", "max"}
    assert {(r["id"], r["first_relevant_id"]) for r in pq if r["variant"] == "mean"} == {
        ("a0", "a1"), ("a1", "a0"), ("b0", "b1"), ("b1", "b0")}


def test_precision_variants_re_embed(tiny_env, audio_set):
    meta, root, _ = audio_set
    result = invoke(meta, "--audio-root", root, "--vocal-detector", "none", "--json",
                    "--variant", "fp32:precision=fp32", "--variant", "bf16:precision=bf16")
    assert result.exit_code == 0, result.output
    variants = json.loads(result.stdout)["variants"]
    assert [v["settings"] for v in variants] == [{"precision": "fp32"}, {"precision": "bf16"}]
    assert all(v["metrics"]["n_queries"] == 4 for v in variants)


def test_missing_model_fails_before_reading_audio(tiny_env, audio_set, monkeypatch, tmp_path):
    meta, root, _ = audio_set
    monkeypatch.setenv("LIVI_HEAD", str(tmp_path / "no-such-head.pt"))
    result = invoke(meta, "--audio-root", root)
    assert result.exit_code != 0
    assert "head" in str(result.exception).lower()


def test_from_catalog_matches_rows_by_path(tiny_env, tmp_path):
    from livi_cli.library.catalog import Catalog

    rng = np.random.default_rng(2)
    library = tmp_path / "lib"
    files = [tmp_path / f"s{i}.flac" for i in range(6)]
    cliques = ["p", "p", "q", "q", "q", "r"]
    vectors = rng.normal(size=(6, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with Catalog.open(library) as cat:
        cat.set_model_key("m1")
        for i, path in enumerate(files):
            status = "instrumental" if i == 5 else "ok"
            tid = cat.upsert_track(path, size=1, mtime_ns=1, content_hash=None, tags=None, status=status)
            if status == "ok":
                windows = np.vstack([vectors[i], vectors[i]])
                cat.set_embedding(tid, "m1", vectors[i], windows, [(0.0, 30.0), (30.0, 60.0)], dim=8)
    meta = tmp_path / "m.csv"
    meta.write_text("id,clique,path\n" + "".join(f"t{i},{c},{p.name}\n" for i, (c, p) in enumerate(zip(cliques, files)))
                    + "gone,r,missing.flac\n")
    result = invoke(meta, "--from-catalog", "--library", library, "--json", "--variant", "max:aggregation=max")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["variants"][0]["metrics"]
    assert metrics["skipped_instrumental"] == 1 and metrics["skipped_missing"] == 1
    expected = retrieval_metrics(vectors[:5], cliques[:5])
    assert metrics["MR1"] == pytest.approx(expected["MR1"], abs=1e-6)
    assert metrics["n_queries"] == 5


@pytest.mark.parametrize("spec, message", [
    ("p:precision=fp8", "fp8"),
    ("v:vocal_detector=nonsense", "unknown vocal detector 'nonsense'"),
])
def test_bad_variant_values_are_refused(tiny_env, audio_set, spec, message):
    meta, root, _ = audio_set
    result = invoke(meta, "--audio-root", root, "--variant", spec)
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_npz_with_ids_and_embeddings_arrays_and_an_instrumental_entry(small_set, tmp_path):
    ids, cliques, emb, _ = small_set
    np.savez(tmp_path / "e.npz", ids=np.array(ids[:-1]), embeddings=emb[:-1])
    np.savez(tmp_path / "w.npz", **{i: emb[j][None, :] for j, i in enumerate(ids[:-1])}, **{ids[-1]: np.zeros((0, 6))})
    csv_path = write_csv(tmp_path / "ids.csv", ids, cliques)
    expected = retrieval_metrics(emb[:-1], cliques[:-1])
    for name, skipped in (("e.npz", "skipped_missing"), ("w.npz", "skipped_instrumental")):
        result = invoke(csv_path, "--embeddings", tmp_path / name, "--json")
        assert result.exit_code == 0, result.output
        metrics = json.loads(result.stdout)["variants"][0]["metrics"]
        assert metrics[skipped] == 1 and metrics["n_items"] == len(ids) - 1
        assert metrics["MAP10"] == pytest.approx(expected["MAP10"], abs=1e-12)


def test_csv_with_bom_spaced_header_and_trailing_commas(tmp_path):
    # "id, clique, e0, e1" (spaces after commas), a UTF-8 BOM and a trailing comma on one row
    path = tmp_path / "spaced.csv"
    path.write_text("\ufeffid, clique, e0, e1\na, w, 1, 0\nb, w, 0.9, 0.1,\nc, v, 0, 1\n", encoding="utf-8")
    result = invoke(path, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["variants"][0]["metrics"]
    expected = retrieval_metrics(np.array([[1, 0], [0.9, 0.1], [0, 1]]), ["w", "w", "v"])
    assert metrics["MR1"] == expected["MR1"] == 1.0 and metrics["n_queries"] == 2


@pytest.mark.parametrize("make, message", [
    (lambda p: np.savez(p, t0=np.ones(6), t1=np.ones(5)), "entry 't1' has shape (5,)"),
    (lambda p: np.savez(p, t0=np.ones((2, 6)), t1=np.ones((1, 4))), "entry 't1' has shape (1, 4)"),
    (lambda p: np.savez(p, t0=np.float64(1.0)), "entry 't0' has shape ()"),
    (lambda p: np.savez(p, ids=np.array(["t0"], dtype=object), embeddings=np.ones((1, 6))), "cannot read"),
    (lambda p: p.write_bytes(b""), "cannot read embeddings"),
    (lambda p: p.write_bytes(b"PK\x03\x04 truncated"), "cannot read embeddings"),
])
def test_bad_embedding_files_are_refused_with_one_line(small_set, tmp_path, make, message):
    ids, cliques, _, _ = small_set
    csv_path = write_csv(tmp_path / "noemb.csv", ids, cliques)
    emb = tmp_path / "bad.npz"
    make(emb)
    result = invoke(csv_path, "--embeddings", emb)
    assert isinstance(result.exception, EvalError), result.exception
    assert "bad.npz" in str(result.exception) and message in str(result.exception)


def test_npy_of_strings_is_refused(small_set, tmp_path):
    ids, cliques, _, _ = small_set
    np.save(tmp_path / "s.npy", np.full((len(ids), 3), "x"))
    result = invoke(write_csv(tmp_path / "noemb.csv", ids, cliques), "--embeddings", tmp_path / "s.npy")
    assert isinstance(result.exception, EvalError) and "numeric (N, D)" in str(result.exception)


def test_unnamed_variant_may_contain_a_colon_in_a_value():
    from livi_cli.eval_inputs import parse_variant

    v = parse_variant("device=cuda:0,aggregation=max")
    assert v.settings == {"device": "cuda:0"} and v.aggregation == "max"
    assert v.name == "device=cuda:0,aggregation=max"
    named = parse_variant("gpu1:device=cuda:1")
    assert named.name == "gpu1" and named.settings == {"device": "cuda:1"}


def test_npz_ids_as_byte_strings_and_mismatched_lengths(small_set, tmp_path):
    ids, cliques, emb, _ = small_set
    csv_path = write_csv(tmp_path / "ids.csv", ids, cliques)
    np.savez(tmp_path / "b.npz", ids=np.array([i.encode() for i in ids]), embeddings=emb)
    result = invoke(csv_path, "--embeddings", tmp_path / "b.npz", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["variants"][0]["metrics"]
    assert metrics["skipped_missing"] == 0
    assert metrics["MAP10"] == pytest.approx(retrieval_metrics(emb, cliques)["MAP10"], abs=1e-12)
    np.savez(tmp_path / "short.npz", ids=np.array(ids), embeddings=emb[:-1])
    result = invoke(csv_path, "--embeddings", tmp_path / "short.npz")
    assert isinstance(result.exception, EvalError) and "one row per id" in str(result.exception)
