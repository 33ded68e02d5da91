"""The teacher: labelled audio → lyrics targets in shards (`livi train teacher`).

Per track: the same vocal windows as inference (Embedder.prepare_path: decode, vocal detection,
30 s windows, log-mel) → Whisper transcription (greedy, temperature fallback on repetitive or
unlikely output) → transcript clean-up → sentence embedding per kept window → shard rows holding
the frozen encoder states (or the log-mel) and the target. Reruns skip tracks already recorded.
"""
from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from livi_cli.config import Settings
from livi_cli.errors import AudioReadError, TrainingError
from livi_cli.train import lyrics
from livi_cli.train.shards import ShardWriter, TrackWindows

PAPER_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
STORES = ("states", "mel")
_ID_COLUMNS = ("id", "track_id", "track")
_PATH_COLUMNS = ("path", "file", "filename")
_CLIQUE_COLUMNS = ("clique", "clique_id", "work", "work_id")


@dataclass(frozen=True)
class TrackSpec:
    id: str
    path: Path
    clique: str | None = None


@dataclass(frozen=True)
class TeacherOptions:
    temperatures: tuple[float, ...] = PAPER_TEMPERATURES  # first is greedy; later ones only as fallback
    compression_ratio_threshold: float | None = 1.35
    logprob_threshold: float | None = -1.0
    language: str | None = None  # None: Whisper detects it per window
    max_new_tokens: int | None = None  # None: Whisper's own limit
    min_words: int = lyrics.MIN_WORDS
    repeat_run: int = lyrics.REPEAT_RUN
    store: str = "states"  # what the shards keep as inputs: "states" (fast training) or "mel" (5x smaller)
    shard_size: int = 256  # windows per shard
    batch_size: int = 8  # windows per Whisper call
    prefetch: int = 2  # tracks decoded ahead of the GPU

    def __post_init__(self):  # checked where the options are made: before any model loads
        if self.store not in STORES:
            raise TrainingError(f"--store: unknown value '{self.store}' (use {' or '.join(STORES)})")


# ---------------------------------------------------------------- track lists
def _pick(header: list[str], names: tuple[str, ...]) -> str | None:
    lower = {h.strip().lower(): h for h in header}
    return next((lower[n] for n in names if n in lower), None)


def read_csv(path: Path) -> list[TrackSpec]:
    """Columns id, path and optionally clique (aliases accepted); relative paths are relative to the CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            id_col, path_col, clique_col = (_pick(header, n) for n in (_ID_COLUMNS, _PATH_COLUMNS, _CLIQUE_COLUMNS))
            if path_col is None:
                raise TrainingError(f"{path}: no 'path' column (header: {', '.join(header) or 'empty'})")
            specs, seen = [], set()
            for line, row in enumerate(reader, 2):
                file = (row.get(path_col) or "").strip()
                if not file:
                    raise TrainingError(f"{path}: line {line}: empty path")
                track = (row.get(id_col) or "").strip() if id_col else file
                if not track:
                    raise TrainingError(f"{path}: line {line}: empty id")
                if track in seen:
                    raise TrainingError(f"{path}: line {line}: duplicate id '{track}'")
                seen.add(track)
                clique = (row.get(clique_col) or "").strip() or None if clique_col else None
                p = Path(file).expanduser()
                specs.append(TrackSpec(track, p if p.is_absolute() else path.parent / p, clique))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TrainingError(f"{path}: cannot read track list ({exc})") from exc
    return specs


def read_folder(root: Path, cliques_from_folders: bool = False) -> list[TrackSpec]:
    """Every audio file under `root`; id = path relative to root; clique = parent folder if asked."""
    from livi_cli.audio.discover import discover

    specs = []
    for p in discover([root]):
        rel = Path(os.path.relpath(p, root))
        clique = rel.parent.as_posix() if cliques_from_folders and rel.parent != Path(".") else None
        specs.append(TrackSpec(rel.as_posix(), Path(p), clique))
    return specs


def read_tracks(source: str | os.PathLike, cliques_from_folders: bool = False) -> list[TrackSpec]:
    source = Path(source).expanduser()
    if source.is_dir():
        specs = read_folder(source, cliques_from_folders)
    elif source.is_file():
        specs = read_csv(source)
    else:
        raise TrainingError(f"{source}: no such file or folder")
    if not specs:
        raise TrainingError(f"{source}: no tracks found")
    return specs


# ---------------------------------------------------------------- Whisper transcription
class Transcriber:
    """Batched Whisper transcription of 30 s log-mel windows with the paper's fallback rules."""

    def __init__(self, model, tokenizer, options: TeacherOptions, device=None, precision: str = "fp32"):
        import torch

        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.options = options
        self.device = device or torch.device("cpu")
        self.precision = precision
        self.model.to(self.device)

    @classmethod
    def load(cls, directory: Path, options: TeacherOptions, device=None, precision: str = "fp32") -> "Transcriber":
        from transformers import AutoTokenizer, WhisperForConditionalGeneration

        missing = TrainingError(
            f"{directory}: no Whisper tokenizer (tokenizer.json or vocab.json); transcription needs it: "
            "run `livi models download` again to fetch the tokenizer files"
        )
        if not any((Path(directory) / n).is_file() for n in ("tokenizer.json", "vocab.json")):
            raise missing  # transformers would build an empty tokenizer and decode everything to ""
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(directory))
        except (OSError, ValueError, TypeError) as exc:
            raise missing from exc
        import torch

        try:  # float32 weights whatever the file holds (turbo ships float16): autocast sets the precision
            model = WhisperForConditionalGeneration.from_pretrained(str(directory), dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise TrainingError(f"{directory}: cannot load Whisper for transcription ({exc})") from exc
        return cls(model, tokenizer, options, device, precision)

    @property
    def encoder(self):
        return self.model.get_encoder()

    def _generate(self, features: np.ndarray):
        import torch

        from livi_cli.model.device import autocast

        o = self.options
        kwargs = dict(task="transcribe", language=o.language) if self._multilingual() else {}
        temps = tuple(o.temperatures)
        fallback = len(temps) > 1
        x = torch.from_numpy(np.ascontiguousarray(features)).to(self.device)
        with torch.inference_mode(), autocast(self.device, self.precision):
            return self.model.generate(
                x, temperature=temps if fallback else temps[0], do_sample=False,
                compression_ratio_threshold=o.compression_ratio_threshold if fallback else None,
                logprob_threshold=o.logprob_threshold if fallback else None,
                max_new_tokens=o.max_new_tokens, **kwargs,
            )

    def _multilingual(self) -> bool:
        return bool(getattr(self.model.generation_config, "lang_to_id", None))

    def transcribe(self, features: np.ndarray) -> list[str]:
        """(N, n_mels, 3000) → N raw transcripts."""
        import transformers

        texts: list[str] = []
        bs = max(1, self.options.batch_size)
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()  # generate() warns per call about config overrides
        try:
            for i in range(0, len(features), bs):
                ids = self._generate(features[i:i + bs])
                texts += [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        finally:
            transformers.logging.set_verbosity(verbosity)
        return texts


# ---------------------------------------------------------------- the run
@dataclass
class TeacherSummary:
    tracks: int = 0  # in the list
    skipped: int = 0  # already done by an earlier run
    ok: int = 0
    failed: int = 0
    instrumental: int = 0
    no_text: int = 0
    windows: int = 0  # windows cut
    kept: int = 0  # windows that became targets
    errors: list[str] = field(default_factory=list)


class Teacher:
    """Holds the models; `run` processes a track list into a shard folder."""

    def __init__(self, settings: Settings, transcriber: Transcriber, text_encoder, options: TeacherOptions,
                 *, encoder=None, feature_extractor=None, whisper_id: str = "in-memory", whisper_revision: str = "none"):
        from livi_cli.embed import Embedder

        self.settings = settings
        self.transcriber = transcriber
        self.text = text_encoder
        self.options = options
        self.encoder = encoder or transcriber.encoder  # the student's frozen encoder
        fe = feature_extractor
        if fe is None:
            from transformers import WhisperFeatureExtractor

            fe = WhisperFeatureExtractor(feature_size=self.encoder.config.num_mel_bins)
        # Only the CPU half of the Embedder is used: the exact windows and log-mel inference will see.
        self.embedder = Embedder(settings, feature_extractor=fe)
        self.whisper_id, self.whisper_revision = whisper_id, whisper_revision

    def manifest(self) -> dict:
        o = self.options
        return dict(
            store=o.store, whisper=self.whisper_id, whisper_revision=self.whisper_revision,
            text_model=self.text.name, text_pooling=self.text.pooling,
            teacher=dict(temperatures=list(o.temperatures), compression_ratio_threshold=o.compression_ratio_threshold,
                         logprob_threshold=o.logprob_threshold, language=o.language, min_words=o.min_words,
                         repeat_run=o.repeat_run, vocal_detector=self.settings.vocal_detector,
                         max_windows=self.settings.max_windows),
        )

    def _states(self, features: np.ndarray) -> np.ndarray:
        import torch

        from livi_cli.model.device import autocast

        t = self.transcriber
        out = []
        bs = max(1, self.options.batch_size)  # as transcribe(): the step and the slice must agree
        for i in range(0, len(features), bs):
            x = torch.from_numpy(np.ascontiguousarray(features[i:i + bs])).to(t.device)
            with torch.inference_mode(), autocast(t.device, t.precision):
                out.append(self.encoder(x).last_hidden_state.float().cpu().numpy().astype(np.float16))
        return np.concatenate(out)

    def process(self, spec: TrackSpec, prepared) -> tuple[TrackWindows | None, str]:
        """One prepared track → its kept windows, or None and the reason."""
        if not prepared.spans:
            return None, "instrumental"
        raw = self.transcriber.transcribe(prepared.features)
        texts = [lyrics.clean(t, self.options.repeat_run) for t in raw]
        keep = [i for i, t in enumerate(texts) if lyrics.keep(t, self.options.min_words)]
        if not keep:
            return None, "no_text"
        kept_features = prepared.features[keep]
        targets = self.text.encode([texts[i] for i in keep])
        inputs = self._states(kept_features) if self.options.store == "states" else kept_features.astype(np.float16)
        return TrackWindows(spec.id, spec.clique, str(spec.path), inputs, targets,
                            [prepared.spans[i] for i in keep], [texts[i] for i in keep], len(prepared.spans)), "ok"

    def run(self, specs: Iterable[TrackSpec], out_dir: str | os.PathLike,
            on_track: Callable[[TrackSpec, str], None] | None = None) -> TeacherSummary:
        specs = list(specs)
        writer = ShardWriter(out_dir, self.manifest(), self.options.shard_size)
        summary = TeacherSummary(tracks=len(specs))
        todo = [s for s in specs if s.id not in writer.done]
        summary.skipped = len(specs) - len(todo)

        def prepare(spec: TrackSpec):
            try:
                return self.embedder.prepare_path(spec.path), None
            except AudioReadError as exc:
                return None, str(exc)

        try:
            with ThreadPoolExecutor(max_workers=max(1, self.options.prefetch)) as pool:
                # A sliding window of futures keeps at most `prefetch` decoded tracks in memory.
                futures = [pool.submit(prepare, s) for s in todo[: self.options.prefetch]]
                for n, spec in enumerate(todo):
                    prepared, error = futures[n].result()
                    futures[n] = None
                    if n + self.options.prefetch < len(todo):
                        futures.append(pool.submit(prepare, todo[n + self.options.prefetch]))
                    status = self._one(spec, prepared, error, writer, summary)
                    if on_track:
                        on_track(spec, status)
        finally:
            # Also on an error or Ctrl-C: the finished tracks still buffered (up to a shard of
            # transcriptions, the costly part) are committed, so a rerun does not redo them.
            writer.close()
        return summary

    def _one(self, spec, prepared, error, writer: ShardWriter, summary: TeacherSummary) -> str:
        if prepared is None:
            writer.skip(spec.id, spec.clique, str(spec.path), "failed", error=error)
            summary.failed += 1
            summary.errors.append(error)
            return "failed"
        item, status = self.process(spec, prepared)
        summary.windows += len(prepared.spans)
        if item is None:
            writer.skip(spec.id, spec.clique, str(spec.path), status, n_windows=len(prepared.spans))
            setattr(summary, status, getattr(summary, status) + 1)
            return status
        writer.add(item)
        summary.ok += 1
        summary.kept += len(item.texts)
        return "ok"


def load_teacher(settings: Settings, options: TeacherOptions, text_encoder, asr_whisper: str | None = None) -> Teacher:
    """Models from the settings: the student's Whisper (settings.whisper), optionally another one to transcribe."""
    from livi_cli.model.device import resolve_device, resolve_precision
    from livi_cli.model.registry import resolve_whisper
    from livi_cli.model.whisper import load_encoder, load_feature_extractor

    device = resolve_device(settings.device)
    precision = resolve_precision(settings.precision, device)
    student = resolve_whisper(settings)
    asr = resolve_whisper(replace(settings, whisper=asr_whisper)) if asr_whisper else student
    transcriber = Transcriber.load(asr.directory, options, device, precision)
    encoder = None
    if asr.directory != student.directory:
        encoder = load_encoder(student.directory).to(device)
        if transcriber.model.config.num_mel_bins != encoder.config.num_mel_bins:
            raise TrainingError(f"--asr-whisper {asr_whisper}: needs {transcriber.model.config.num_mel_bins} mel bins, "
                                f"{settings.whisper} needs {encoder.config.num_mel_bins}; pick Whispers of one family")
    return Teacher(settings, transcriber, text_encoder, options, encoder=encoder,
                   feature_extractor=load_feature_extractor(student.directory),
                   whisper_id=_model_id(student), whisper_revision=student.revision)


def _model_id(location) -> str:
    """Hub id as given; a local folder as an absolute path (fit may run from another directory)."""
    local = Path(location.source).expanduser()
    return str(local.resolve()) if local.exists() else location.source
