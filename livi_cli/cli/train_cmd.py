"""`livi train`: build lyrics targets (`teacher`), train a head (`fit`), export it (`export`)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from livi_cli.cli.options import DeviceOpt, PrecisionOpt

train_app = typer.Typer(help="Train your own LIVI head on your own labelled music.", no_args_is_help=True)


def _floats(text: str, option: str) -> tuple[float, ...]:
    from livi_cli.errors import ConfigError

    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise ConfigError(f"{option}: expected comma-separated numbers, got '{text}'") from exc
    if not values:
        raise ConfigError(f"{option}: needs at least one value")
    return values


def _betas(text: str) -> tuple[float, float]:
    from livi_cli.errors import ConfigError

    values = _floats(text, "--betas")
    if len(values) != 2 or not all(0.0 <= v < 1.0 for v in values):
        raise ConfigError(f"--betas: expected two numbers in [0, 1) such as 0.9,0.98, got '{text}'")
    return values[0], values[1]


@train_app.command("teacher")
def teacher(
    source: Path = typer.Argument(..., help="CSV with columns id, path[, clique] (paths relative to the CSV), or a folder of audio."),
    out: Path = typer.Argument(..., help="Shard folder to create or resume."),
    whisper: Optional[str] = typer.Option(None, "--whisper", help="Whisper whose encoder the head will read (env LIVI_WHISPER)."),
    asr_whisper: Optional[str] = typer.Option(None, "--asr-whisper", help="Another Whisper to transcribe with (default: --whisper)."),
    text_model: str = typer.Option("Alibaba-NLP/gte-multilingual-base", "--text-model", help="Sentence-embedding model (hub id or folder)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow the text model to run its own code from the hub (gte-multilingual-base needs it)."),
    pooling: str = typer.Option("auto", "--pooling", help="Sentence pooling: auto (the model's convention), cls or mean."),
    store: str = typer.Option("states", "--store", help="Keep encoder 'states' (fast training, ~3.8 MB/window) or log-'mel' (~0.8 MB/window)."),
    shard_size: int = typer.Option(256, "--shard-size", min=1, help="Windows per shard file."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Windows per Whisper call."),
    min_words: int = typer.Option(4, "--min-words", min=0, help="Drop windows whose cleaned transcript has fewer words."),
    language: Optional[str] = typer.Option(None, "--language", help="Force a transcription language (default: detect per window)."),
    temperatures: str = typer.Option("0,0.2,0.4,0.6,0.8,1.0", "--temperatures", help="Decoding temperatures: greedy first, the rest are fallbacks."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1, help="Cap a window's transcript length in tokens (default: Whisper's limit)."),
    cliques_from_folders: bool = typer.Option(False, "--cliques-from-folders", help="Folder input: the parent folder names the clique (song)."),
    vocal_detector: Optional[str] = typer.Option(None, "--vocal-detector", help="Vocal detector (as for scan)."),
    max_windows: Optional[int] = typer.Option(None, "--max-windows", min=1, help="At most this many windows per track."),
    device: Optional[str] = DeviceOpt,
    precision: Optional[str] = PrecisionOpt,
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Transcribe the vocal windows of each track and store targets + encoder inputs as shards (resumable)."""
    from livi_cli.cli.console import err_console, print_json, print_table
    from livi_cli.config import load_settings
    from livi_cli.train.teacher import TeacherOptions, load_teacher, read_tracks
    from livi_cli.train.text import TextEncoder

    specs = read_tracks(source, cliques_from_folders)
    settings = load_settings(whisper=whisper, device=device, precision=precision, vocal_detector=vocal_detector,
                             max_windows=max_windows)
    options = TeacherOptions(temperatures=_floats(temperatures, "--temperatures"), language=language, min_words=min_words,
                             store=store, shard_size=shard_size, batch_size=batch_size, max_new_tokens=max_new_tokens)
    from livi_cli.model.device import resolve_device
    from livi_cli.vocals import get_detector

    get_detector(settings.vocal_detector)  # an unknown name fails now, not in the first track's worker

    text = TextEncoder.load(text_model, trust_remote_code=trust_remote_code, pooling=pooling,
                            device=str(resolve_device(settings.device)))
    model = load_teacher(settings, options, text, asr_whisper)
    summary = _run_teacher(model, specs, out, err_console)
    data = {k: v for k, v in vars(summary).items() if k != "errors"}
    if json_out:
        print_json({**data, "errors": summary.errors, "out": str(out)})
    else:
        print_table("Teacher", ["tracks", "skipped (done before)", "ok", "failed", "instrumental", "no lyrics",
                                "windows", "targets"],
                    [[data["tracks"], data["skipped"], data["ok"], data["failed"], data["instrumental"], data["no_text"],
                      data["windows"], data["kept"]]])
        for error in summary.errors[:20]:
            err_console.print(f"warning: {error}")


def _run_teacher(model, specs, out: Path, console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    counts: dict[str, int] = {}
    with Progress(TextColumn("teacher"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[status]}"), console=console, transient=False) as progress:
        task = progress.add_task("teacher", total=len(specs), status="")

        def on_track(spec, status):
            counts[status] = counts.get(status, 0) + 1
            progress.update(task, advance=1, status=" ".join(f"{k}:{v}" for k, v in sorted(counts.items())))

        summary = model.run(specs, out, on_track=on_track)
        progress.update(task, completed=len(specs))
    return summary


@train_app.command("fit")
def fit(
    shards: Path = typer.Argument(..., help="Shard folder written by `livi train teacher`."),
    out: Path = typer.Argument(..., help="Output folder: best.pt, last.pt, log.jsonl, split.json."),
    epochs: int = typer.Option(3, "--epochs", min=1),
    batch_size: int = typer.Option(128, "--batch-size", min=2, help="Windows per step (the geometry loss needs >= 2)."),
    lr: float = typer.Option(1e-4, "--lr", help="Learning rate at step 0 (start of warm-up)."),
    peak_lr: float = typer.Option(5e-4, "--peak-lr", help="Learning rate after warm-up."),
    final_lr: float = typer.Option(1e-6, "--final-lr", help="Learning rate at the last step (cosine decay)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", min=0, help="Default: 10k, at most 10% of the run."),
    weight_decay: float = typer.Option(0.01, "--weight-decay"),
    betas: str = typer.Option("0.9,0.98", "--betas", help="AdamW betas."),
    alpha: float = typer.Option(0.5, "--alpha", help="Loss balance: alpha*(1-cos) + (1-alpha)*similarity-matrix MSE."),
    grad_clip: float = typer.Option(1.0, "--grad-clip", help="Max gradient norm (0 disables)."),
    seed: int = typer.Option(0, "--seed"),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Share of cliques held out for validation (0: none)."),
    hiddens: Optional[str] = typer.Option(None, "--hiddens", help="Projection sizes, e.g. 3072,2048,2048,1536 (the published head)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from this head checkpoint instead of random weights."),
    num_workers: int = typer.Option(0, "--num-workers", min=0, help="Processes reading shards."),
    log_every: int = typer.Option(1, "--log-every", min=1, help="Steps between lines in log.jsonl."),
    whisper: Optional[str] = typer.Option(None, "--whisper", help="Encoder for shards stored as log-mel (default: the one recorded in the shards)."),
    device: Optional[str] = DeviceOpt,
    precision: Optional[str] = PrecisionOpt,
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Train a head on the shards; validates each epoch, keeps the best checkpoint (livi format)."""
    from livi_cli.cli.console import err_console, print_json, print_table
    from livi_cli.config import load_settings
    from livi_cli.train.shards import ShardSet
    from livi_cli.train.trainer import FitConfig, Trainer

    b = _betas(betas)
    settings = load_settings(device=device, precision=precision)
    cfg = FitConfig(epochs=epochs, batch_size=batch_size, base_lr=lr, peak_lr=peak_lr, final_lr=final_lr,
                    warmup_steps=warmup_steps, weight_decay=weight_decay, betas=b, alpha=alpha,
                    grad_clip=grad_clip or None, seed=seed, val_fraction=val_fraction, device=settings.device,
                    precision=settings.precision, hiddens=tuple(int(v) for v in _floats(hiddens, "--hiddens")) if hiddens else None,
                    init=str(init) if init else None, num_workers=num_workers, log_every=log_every)
    shard_set = ShardSet.open(shards)
    encoder = _mel_encoder(shard_set, whisper) if shard_set.manifest.get("store") == "mel" else None
    with _FitProgress(err_console) as progress:
        result = Trainer(shard_set, out, cfg, encoder=encoder, callback=progress.on_record).fit()
    summary = {"best": str(result.best_path) if result.best_path else None, "last": str(result.last_path),
               "log": str(result.log_path), "first_loss": result.first_loss, "last_loss": result.last_loss,
               "windows_per_s": result.windows_per_s, "validation": result.history}
    if json_out:
        print_json(summary)
    else:
        rows = [[r["epoch"], _fmt(r.get("loss")), _fmt(r.get("mean_cos")), _fmt(r.get("MAP10")), _fmt(r.get("HR1")),
                 _fmt(r.get("MR1"), 2)] for r in result.history]
        print_table("Validation", ["epoch", "loss", "mean cos", "MAP@10", "HR@1", "MR1"], rows)
        err_console.print(f"best checkpoint: {result.best_path}\nlog: {result.log_path}")


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _mel_encoder(shard_set, whisper: Optional[str]):
    from livi_cli.config import load_settings
    from livi_cli.model.registry import resolve_whisper
    from livi_cli.model.whisper import load_encoder

    name = whisper or shard_set.manifest.get("whisper")
    return load_encoder(resolve_whisper(load_settings(whisper=name)).directory)


class _FitProgress:
    """Rich progress bar over optimiser steps; validation results print above it."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("fit"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.fields[info]}"), console=console)
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def on_record(self, r: dict) -> None:
        kind = r.get("kind")
        if kind == "start":
            self.task = self.progress.add_task("fit", total=r["total_steps"], info="")
            self.progress.console.print(
                f"{r['train_tracks']} train / {r['val_tracks']} validation tracks, {r['train_windows']} windows, "
                f"{r['parameters']:,} parameters, {r['device']} {r['precision']}")
        elif kind == "train" and self.task is not None:
            self.progress.update(self.task, completed=r["step"],
                                 info=f"epoch {r['epoch']} loss {r['loss']:.4f} lr {r['lr']:.2e} {r['windows_per_s']:.0f} win/s")
        elif kind == "val":
            self.progress.console.print(
                f"epoch {r['epoch']}: val loss {_fmt(r.get('loss'))} mean cos {_fmt(r.get('mean_cos'))} "
                f"MAP@10 {_fmt(r.get('MAP10'))} HR@1 {_fmt(r.get('HR1'))}")


@train_app.command("export")
def export(
    checkpoint: Path = typer.Argument(..., help="A head in livi's format (best.pt) or an official livi.pth."),
    out: Path = typer.Argument(..., help="Where to write the official plain state-dict layout."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a head in the published checkpoint layout (a plain state dict, as livi.pth)."""
    from livi_cli.cli.console import info
    from livi_cli.errors import CheckpointError
    from livi_cli.model.checkpoint import export_official, load_head

    if out.exists() and not force:
        raise CheckpointError(f"{out}: already exists (use --force to overwrite)")
    head = load_head(checkpoint)
    export_official(head, out)
    c = head.config
    note = "" if c.num_heads == 1 else f"; note: {c.num_heads} pooling heads cannot be read from the plain layout"
    info(f"wrote {out} ({c.dim_whisper}-d states -> {c.dim_embed}-d, projection {list(c.dim_hiddens)}{note})")


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
