"""`livi scan`: discover → stat → diff (plan.py) → prepare in a worker pool → encode in batches → commit.

Decoding, vocal detection and log-mel (Embedder.prepare_path) run in a thread pool that stays
`prefetch` tracks ahead of the encoder (decode, soxr, numpy and torch release the GIL), so the encoder
never waits on I/O. Prepared tracks are grouped until they hold enough windows for a few encoder
batches (or `commit_every` tracks) and encoded together (windows batched across tracks); each group
is committed in one SQLite transaction, so Ctrl-C or a crash loses at most the group in flight and
the next scan picks up where this one stopped (committed tracks are unchanged by then).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from livi_cli.errors import AudioReadError, LiviError
from livi_cli.library.catalog import TAG_FIELDS, Catalog, path_key
from livi_cli.library.plan import FileStat, Plan, make_plan

COMMIT_EVERY = 16  # tracks per transaction at most (LIVI_SCAN_COMMIT_EVERY overrides)
BATCHES_PER_GROUP = 1  # a group closes once it fills an encoder batch: progress and commits stay frequent


@dataclass
class ScanFailure:
    path: str
    reason: str


@dataclass
class ScanSummary:
    new: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    removed: int = 0
    instrumental: int = 0  # tracks found instrumental in this scan (also counted as new/updated)
    failed: int = 0  # files that failed in this scan (the exit code is 1 when any did)
    still_failed: int = 0  # files that failed in an earlier scan and are unchanged: skipped, not counted above
    failures: list[ScanFailure] = field(default_factory=list)
    windows: int = 0  # windows embedded in this scan
    embedded: int = 0  # tracks that went through the encoder
    seconds: float = 0.0
    model_key: str | None = None
    model_changed: bool = False
    dry_run: bool = False
    planned: list[dict] = field(default_factory=list)  # dry run: what would happen to which file
    index: str | None = None  # what the index sync did: unchanged | updated | rebuilt
    library: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class ScanProgress:
    """Callbacks the CLI implements to draw progress; every method is optional (no-ops here)."""

    def message(self, text: str) -> None: ...

    def discovered(self, files: int) -> None: ...

    def start_embedding(self, total: int) -> None: ...

    def track_started(self, path: str) -> None: ...

    def track_done(self, path: str, *, status: str, windows: int, error: str | None = None) -> None: ...


def _int_env(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _stat_files(paths: Sequence[Path], summary: ScanSummary) -> list[FileStat]:
    out = []
    for p in paths:
        path = os.path.abspath(p)
        try:
            st = os.stat(path)
        except OSError as exc:
            summary.failures.append(ScanFailure(path, f"cannot stat: {exc.strerror or exc}"))
            continue
        out.append(FileStat(path, path_key(path), st.st_size, st.st_mtime_ns))
    return out


def read_track_tags(path: str) -> dict:
    """The catalog's tag columns of one file (scan and `find-covers --add` store the same fields)."""
    from livi_cli.audio.tags import read_tags

    tags = read_tags(path).as_dict()
    return {k: tags.get(k) for k in TAG_FIELDS}


def fingerprinter():
    """groups.fingerprint.fingerprint, or None: fingerprints are optional for scanning and searching."""
    try:
        from livi_cli.groups.fingerprint import fingerprint
    except ImportError:
        return None
    return fingerprint


def prepare_track(embedder, path: str, fingerprint_fn) -> tuple[object, bytes | None]:
    """embed.Prepared of `path` and its audio fingerprint (None without fingerprint_fn or audio).

    The fingerprint is computed from the same decoded wave; the wave is then dropped, since the
    encoder does not need it. Raises what Embedder.prepare_path raises."""
    prepared = embedder.prepare_path(path, keep_wave=fingerprint_fn is not None)
    wave = getattr(prepared, "wave", None)
    fp = fingerprint_fn(wave) if fingerprint_fn is not None and wave is not None and len(wave) else None
    prepared.wave = None
    return prepared, fp


def store_embedded(cat: Catalog, path: str, *, size: int, mtime_ns: int, content_hash: str | None, tags: dict,
                   embedding, fingerprint: bytes | None, model_key: str, dim: int) -> int:
    """Write one embedded track (row + vectors) inside the caller's transaction; returns its id.

    A track without a vector is instrumental; with --include-instrumental it has one and is 'ok'
    (searchable). Duration falls back to the decoded length when the tags have none."""
    tags = dict(tags, duration=tags.get("duration") or embedding.duration)
    track_id = cat.upsert_track(
        path, size=size, mtime_ns=mtime_ns, content_hash=content_hash, tags=tags,
        status="instrumental" if embedding.vector is None else "ok", mean_vocalness=embedding.mean_vocalness,
        fingerprint=fingerprint, segments=[[s.start, s.end, s.vocalness] for s in embedding.segments])
    cat.set_embedding(track_id, model_key, embedding.vector, embedding.windows, embedding.spans, dim)
    return track_id


def _one_line(reason: str) -> str:
    """A failure reason as one line: it is a cell of the failures table and of the catalog's error column."""
    return " ".join(str(reason).split())


@dataclass
class _Prepared:
    job: tuple  # (kind, FileStat, track id | None)
    tags: dict
    prepared: object | None = None  # embed.Prepared
    fingerprint: bytes | None = None
    error: str | None = None


class Scanner:
    def __init__(self, catalog: Catalog, embedder, *, progress: ScanProgress | None = None,
                 workers: int | None = None, commit_every: int | None = None):
        self.cat = catalog
        self.emb = embedder
        self.progress = progress or ScanProgress()
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.commit_every = commit_every or _int_env("LIVI_SCAN_COMMIT_EVERY", COMMIT_EVERY)
        self.fingerprint = fingerprinter()

    # ---- cheap changes ------------------------------------------------------------------
    def apply_plan(self, plan: Plan, summary: ScanSummary) -> None:
        """Everything that needs no decoding, in one transaction."""
        cat = self.cat
        with cat.transaction():
            for tid, f in plan.touched:
                cat.touch(tid, size=f.size, mtime_ns=f.mtime_ns)
            for tid, _old, f in plan.moved:
                cat.move_track(tid, f.path, size=f.size, mtime_ns=f.mtime_ns)
                cat.restore_status(tid)
            for tid, f in plan.restored:
                cat.touch(tid, size=f.size, mtime_ns=f.mtime_ns)
                cat.restore_status(tid)
            for donor, f in plan.copied:
                new_id = cat.upsert_track(f.path, size=f.size, mtime_ns=f.mtime_ns, content_hash=f.hash,
                                          tags=read_track_tags(f.path), status="ok")
                cat.copy_embedding(donor, new_id)
            cat.mark_removed(tid for tid, _ in plan.removed)
        summary.unchanged += len(plan.unchanged) + len(plan.touched)
        summary.moved += len(plan.moved)
        summary.new += len(plan.copied) + len(plan.restored)
        summary.removed += len(plan.removed)

    # ---- the embedding pipeline -----------------------------------------------------------
    def _prepare(self, job: tuple) -> _Prepared:
        """Worker-thread side: tags, decode, windows, log-mel, fingerprint. Never raises for bad audio."""
        _kind, f, _tid = job
        out = _Prepared(job, tags={})
        try:
            out.tags = read_track_tags(f.path)
            out.prepared, out.fingerprint = prepare_track(self.emb, f.path, self.fingerprint)
        except AudioReadError as exc:
            out.error = _one_line(exc.reason)
        except Exception as exc:  # one odd file must not stop a scan of thousands
            out.error = _one_line(f"{type(exc).__name__}: {exc}")
        return out

    def embed(self, jobs: list[tuple], summary: ScanSummary) -> None:
        if not jobs:
            return
        self.progress.start_embedding(len(jobs))
        window_target = BATCHES_PER_GROUP * max(1, int(self.emb.settings.batch_size))
        prefetch = max(2, 2 * self.workers)
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="livi-prepare")
        pending: list[Future] = []
        try:
            queue = iter(jobs)
            for job in queue:
                pending.append(pool.submit(self._prepare, job))
                if len(pending) >= prefetch:
                    break
            group: list[_Prepared] = []
            windows = 0
            while pending:
                item = pending.pop(0).result()
                self.progress.track_started(item.job[1].path)
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append(pool.submit(self._prepare, nxt))
                group.append(item)
                windows += len(item.prepared.spans) if item.prepared is not None else 0
                if windows >= window_target or len(group) >= self.commit_every or not pending:
                    self._encode_and_commit(group, summary)
                    group, windows = [], 0
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _encode_and_commit(self, group: list[_Prepared], summary: ScanSummary) -> None:
        ok = [g for g in group if g.error is None]
        results = self._encode(ok)
        key, dim = self.emb.identity.key(), self.emb.identity.dim
        with self.cat.transaction():
            for g in group:
                kind, f, tid = g.job
                if kind == "moved" and tid is not None:  # --force on a moved file: keep its id
                    self.cat.move_track(tid, f.path, size=f.size, mtime_ns=f.mtime_ns)
                res = results.get(id(g))
                if g.error is None and isinstance(res, str):
                    g.error = res
                elif g.error is None and res.vector is None and not res.instrumental:
                    g.error = "no audio to embed (empty or silent file)"
                if g.error is not None:
                    self.cat.upsert_track(f.path, size=f.size, mtime_ns=f.mtime_ns, content_hash=f.hash,
                                          tags=g.tags, status="failed", error=g.error)
                    continue
                store_embedded(self.cat, f.path, size=f.size, mtime_ns=f.mtime_ns, content_hash=f.hash, tags=g.tags,
                               embedding=res, fingerprint=g.fingerprint, model_key=key, dim=dim)
        for g in group:  # counted only once committed
            kind, f, _ = g.job
            if g.error is not None:
                summary.failures.append(ScanFailure(f.path, g.error))
                self.progress.track_done(f.path, status="failed", windows=0, error=g.error)
                continue
            res = results[id(g)]
            summary.embedded += 1
            summary.windows += len(res.spans)
            summary.instrumental += bool(res.instrumental)
            if kind == "new":
                summary.new += 1
            elif kind == "moved":
                summary.moved += 1
            else:
                summary.updated += 1
            self.progress.track_done(f.path, status="instrumental" if res.vector is None else "ok",
                                     windows=len(res.spans))

    def _encode(self, items: list[_Prepared]) -> dict:
        """id(item) → TrackEmbedding, or an error string for an item the encoder failed on."""
        if not items:
            return {}
        try:
            return {id(g): r for g, r in zip(items, self.emb.encode([g.prepared for g in items]))}
        except (KeyboardInterrupt, MemoryError, LiviError):
            raise  # a LiviError here is about the model or settings, not this track: stop the scan
        except Exception:
            if len(items) == 1:
                import traceback

                return {id(items[0]): "encoder failed: " + traceback.format_exc(limit=1).strip().splitlines()[-1]}
            out = {}
            for g in items:  # isolate the track that breaks the batch
                out.update(self._encode([g]))
            return out


def run_scan(paths: Sequence[str | os.PathLike], library_dir: Path, embedder, *, force: bool = False,
             dry_run: bool = False, limit: int | None = None, workers: int | None = None,
             progress: ScanProgress | None = None, model_key: str | None = None,
             commit_every: int | None = None) -> ScanSummary:
    """The whole scan. The caller holds the writer lock (unless dry_run) and has checked the models."""
    from livi_cli.audio.discover import discover

    t0 = time.perf_counter()
    progress = progress or ScanProgress()
    summary = ScanSummary(dry_run=dry_run, library=str(library_dir), model_key=model_key)
    roots = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]  # "~/Music" from Python too
    for root in roots:
        if not os.path.exists(root):
            raise LiviError(f"{root}: no such file or folder")

    def on_error(path, reason):
        summary.failures.append(ScanFailure(str(path), reason))

    files = _stat_files(list(discover(roots, on_error=on_error)), summary)
    progress.discovered(len(files))
    catalog = _open_for(library_dir, dry_run)
    try:
        entries = catalog.scan_entries() if catalog else {}
        stored_key = catalog.model_key() if catalog else None
        if dry_run and model_key is None:  # no model installed: assume the library's own
            model_key = summary.model_key = stored_key
        plan = make_plan(files, entries, [path_key(r) for r in roots], model_key, force=force,
                         workers=workers or min(8, 2 * (os.cpu_count() or 1)))
        summary.still_failed = len(plan.still_failed)
        for path, reason in plan.unreadable:
            summary.failures.append(ScanFailure(path, reason))
        summary.model_changed = plan.model_changed or (stored_key is not None and model_key is not None
                                                       and stored_key != model_key)
        if summary.model_changed:
            progress.message(f"the model differs from the one this library was built with ({stored_key}); "
                             "re-embedding every track so vectors from different models never mix")
        jobs = plan.embed[:limit] if limit is not None else plan.embed
        if dry_run:
            summary.planned = _describe(plan, jobs)
            _count_dry(plan, jobs, summary)
            return summary
        scan_id = catalog.begin_scan(model_key, roots)
        if model_key is not None and stored_key != model_key:
            with catalog.transaction():
                catalog.set_model_key(model_key)
        scanner = Scanner(catalog, embedder, progress=progress, workers=workers, commit_every=commit_every)
        scanner.apply_plan(plan, summary)
        scanner.embed(jobs, summary)
        summary.failed = len(summary.failures)
        from livi_cli.library import index

        progress.message("updating the search index")
        summary.index = index.sync(catalog, library_dir)
        summary.seconds = time.perf_counter() - t0
        catalog.finish_scan(scan_id, {k: v for k, v in summary.to_dict().items() if k != "planned"})
        return summary
    finally:
        if catalog:
            catalog.close()


def _open_for(library_dir: Path, dry_run: bool) -> Catalog | None:
    if not dry_run:
        return Catalog.open(library_dir)
    from livi_cli.library.catalog import CATALOG_FILE

    return Catalog.open(library_dir, readonly=True) if (Path(library_dir) / CATALOG_FILE).is_file() else None


def _describe(plan: Plan, jobs: list[tuple]) -> list[dict]:
    out = [{"action": kind, "path": f.path} for kind, f, _ in jobs]
    out += [{"action": "moved", "path": f.path, "from": old} for _, old, f in plan.moved]
    out += [{"action": "copied", "path": f.path} for _, f in plan.copied]
    out += [{"action": "restored", "path": f.path} for _, f in plan.restored]
    out += [{"action": "removed", "path": old} for _, old in plan.removed]
    return out


def _count_dry(plan: Plan, jobs: list[tuple], summary: ScanSummary) -> None:
    summary.new = sum(k == "new" for k, _, _ in jobs) + len(plan.copied) + len(plan.restored)
    summary.updated = sum(k == "updated" for k, _, _ in jobs)
    summary.moved = len(plan.moved) + sum(k == "moved" for k, _, _ in jobs)
    summary.unchanged = len(plan.unchanged) + len(plan.touched)
    summary.removed = len(plan.removed)
    summary.failed = len(summary.failures)
