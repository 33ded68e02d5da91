"""`livi --help` and `livi models` through the real CLI entry point."""
from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from livi_cli.cli.app import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "models" in result.output


def test_help_is_fast_and_imports_nothing_heavy():
    code = "import sys; from livi_cli.cli import app; print(','.join(m for m in ('torch','transformers','librosa','hnswlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_models_present(tiny_env, tiny_whisper_dir, tiny_head_path):
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["kind"]: r for r in json.loads(result.stdout)}
    assert rows["whisper"]["status"] == "present" and rows["whisper"]["location"] == str(tiny_whisper_dir)
    assert rows["head"]["status"] == "present" and len(rows["head"]["checksum"]) == 64


def test_models_absent_exit_1_with_instructions(tiny_env, monkeypatch, tmp_path):
    monkeypatch.delenv("LIVI_HEAD")
    monkeypatch.setenv("LIVI_WHISPER", str(tmp_path / "no-whisper"))
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 1
    assert "livi models install-head" in result.stderr
    assert "no-whisper" in result.stderr
    assert "Traceback" not in result.output


def test_install_head_then_present(tiny_env, monkeypatch, golden):
    monkeypatch.delenv("LIVI_HEAD")
    result = runner.invoke(app, ["models", "install-head", str(golden / "livi_head_small.pt")])
    assert result.exit_code == 0, result.output
    assert "sha256" in result.stderr
    rows = {r["kind"]: r for r in json.loads(runner.invoke(app, ["models", "--json"]).stdout)}
    assert rows["head"]["status"] == "present" and str(tiny_env) in rows["head"]["location"]


def test_install_head_refuses_bad_file_with_one_line(tiny_env, tmp_path):
    bad = tmp_path / "livi.pth"
    bad.write_text("not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "livi_cli", "models", "install-head", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: ") and str(bad) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
