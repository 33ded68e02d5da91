"""Options shared by several commands, defined once so their names and help read the same everywhere."""
from __future__ import annotations

import typer

LibraryOpt = typer.Option(None, "--library", help="Library folder (catalog + index). Env LIVI_LIBRARY; "
                          "default <data dir>/library (LIVI_HOME).")
WhisperOpt = typer.Option(None, "--whisper", help="Whisper hub id or local directory (env LIVI_WHISPER).")
HeadOpt = typer.Option(None, "--head", help="Head checkpoint file (env LIVI_HEAD).")
DeviceOpt = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N | mps (env LIVI_DEVICE).")
PrecisionOpt = typer.Option(None, "--precision", help="auto | fp32 | bf16 | fp16 (env LIVI_PRECISION).")
BatchSizeOpt = typer.Option(None, "--batch-size", min=1, help="Windows per encoder batch (env LIVI_BATCH_SIZE).")
VocalDetectorOpt = typer.Option(None, "--vocal-detector",
                                help="Vocal detector: default, silero, spectral, or none for plain 30 s windows.")
