"""The Python API: what the CLI commands call. Each function takes Settings and returns plain data.

    from livi_cli import api
    emb = api.embedder(api.settings(device="cpu"))
    track = emb.embed_path("song.mp3")
"""
from __future__ import annotations

from pathlib import Path

from livi_cli.config import Settings, load_settings
from livi_cli.errors import LiviError


def settings(**flags) -> Settings:
    """Defaults → config file → LIVI_* env → these flags (None values are ignored)."""
    return load_settings(**flags)


def embedder(s: Settings | None = None, check: bool = True):
    """An Embedder for these settings; with check=True a missing model fails here, before any work."""
    from livi_cli.embed import Embedder

    emb = Embedder(s or settings())
    if check:
        emb.check_models()
    return emb


def current_model_key(s: Settings) -> str:
    """Identity key of the configured models (reads digests, loads no weights)."""
    from livi_cli.embed import Embedder

    return Embedder(s).identity.key()


# ---------------------------------------------------------------- models
def models_status(s: Settings, verify: bool = False) -> list[dict]:
    from livi_cli.model import registry as reg

    rows = []
    wm = reg.manifest(reg.WHISPER)
    row = {"name": s.whisper, "kind": "whisper", "required": True, "licence": wm["licence"] if s.whisper == wm["repo_id"] else "",
           "hint": f"run: livi models download" + ("" if s.whisper == wm["repo_id"] else f" --whisper {s.whisper}")}
    try:
        loc = reg.resolve_whisper(s)
        row.update(status="present", location=str(loc.directory), checksum=loc.revision)
    except LiviError as exc:
        row.update(status="missing", location=getattr(exc, "looked_in", ""), checksum="", hint=getattr(exc, "hint", str(exc)))
    rows.append(row)

    hm = reg.manifest(reg.HEAD)
    row = {"name": reg.HEAD, "kind": "head", "required": True, "licence": hm["licence"], "hint": hm["install"]}
    try:
        path = reg.resolve_head(s)
        digest, _ = reg.head_info(path, s)
        status = "present"
        if verify and not s.head:
            ok = reg.verify_installed_head(s)
            status = "present" if ok else "corrupt (sha256 differs from install record)"
        row.update(status=status, location=str(path), checksum=digest)
    except LiviError as exc:
        row.update(status="missing", location=getattr(exc, "looked_in", ""), checksum="", hint=getattr(exc, "hint", str(exc)))
    rows.append(row)

    for name, m in sorted(reg.manifests().items()):
        if m["kind"] in ("whisper", "head"):
            continue
        rows.append({"name": name, "kind": m["kind"], "required": False, "status": m.get("status", "bundled"),
                     "location": m.get("source", ""), "checksum": m.get("sha256", ""), "licence": m.get("licence", ""),
                     "hint": m.get("install", "")})
    return rows


def install_head(s: Settings, path: Path) -> tuple[dict, Path]:
    from livi_cli.model import registry as reg

    meta = reg.install_head(s, Path(path))
    return meta, reg.installed_head_path(s)


def download_whisper(s: Settings) -> Path:
    from livi_cli.model import registry as reg

    return reg.download_whisper(s)


# ---------------------------------------------------------------- library: scan, find-covers, status
def _checked_embedder(s: Settings):
    return embedder(s)  # the module-level factory (the functions below shadow its name with a parameter)


def scan(paths, s: Settings, *, force: bool = False, dry_run: bool = False, limit: int | None = None,
         workers: int | None = None, progress=None, embedder=None, commit_every: int | None = None):
    """Scan `paths` into the library at s.library; returns a library.scan.ScanSummary.

    Missing models stop it before any work (ModelMissingError); a second writer gets LibraryLockedError.
    A dry run needs no model and takes no lock: it reports what a scan would do.
    """
    from livi_cli.library.lock import WriterLock
    from livi_cli.library.scan import run_scan

    if dry_run:
        try:
            from livi_cli.embed import Embedder

            key = (embedder or Embedder(s)).identity.key()
        except LiviError:  # missing or unreadable model
            key = None  # without a model a dry run cannot tell whether a model change forces re-embedding
        return run_scan(paths, s.library, None, dry_run=True, force=force, limit=limit, workers=workers,
                        progress=progress, model_key=key)
    emb = embedder or _checked_embedder(s)
    key = emb.identity.key()
    with WriterLock(s.library):
        return run_scan(paths, s.library, emb, force=force, limit=limit, workers=workers, progress=progress,
                        model_key=key, commit_every=commit_every)


def find_covers(file, s: Settings, *, k: int = 10, min_similarity: float | None = None, add: bool = False,
                embedder=None):
    """Library tracks nearest to `file`; returns a search.CoverResult (query excluded, copies marked)."""
    from livi_cli import search

    factory = (lambda: embedder) if embedder is not None else (lambda: _checked_embedder(s))
    return search.find_covers(file, s.library, k=k, min_similarity=min_similarity, add=add,
                              embedder_factory=factory)


def status(s: Settings) -> dict:
    """Library location, counts by state, model identity, index health, last scan (plain data)."""
    from livi_cli.library import index
    from livi_cli.library.catalog import CATALOG_FILE, Catalog

    db = s.library / CATALOG_FILE
    out: dict = {"library": str(s.library), "exists": db.is_file()}
    try:
        out["configured_model"] = current_model_key(s)
    except LiviError as exc:
        out["configured_model"] = None
        out["configured_model_error"] = str(exc)
    if not db.is_file():
        out.update(counts={"ok": 0, "instrumental": 0, "failed": 0, "removed": 0}, total=0, model_key=None,
                   index={"state": "empty", "reason": "no library yet (run `livi scan PATH`)"}, last_scan=None)
        return out
    with Catalog.open(s.library, readonly=True) as cat:
        counts = cat.counts()
        health = index.health(cat, s.library)
        n = health.count
        out.update(
            schema_version=cat.schema_version(), counts=counts, total=sum(counts.values()),
            model_key=cat.model_key(), stale_embeddings=cat.stale_embeddings(), vectors=n,
            search="exact" if n <= index.exact_search_max() else "hnsw",
            index=health.to_dict(), last_scan=cat.last_scan(),
            catalog_bytes=sum(p.stat().st_size for p in s.library.glob(CATALOG_FILE + "*")),
        )
    out["model_matches"] = out["configured_model"] is None or out["model_key"] in (None, out["configured_model"])
    return out


# ---------------------------------------------------------------- clusters / duplicates (groups/)
def _groups_catalog(s: Settings, *, need_model: bool):
    """The catalog opened read-only, refusing an empty library or one built with another model.

    need_model=False (duplicates: fingerprints do not depend on the model) skips the model check
    only when the configured model cannot be resolved at all; a *different* model still refuses."""
    from livi_cli.errors import LibraryError, ModelMismatchError
    from livi_cli.library.catalog import Catalog

    cat = Catalog.open(s.library, readonly=True)
    try:
        if not any(n for status, n in cat.counts().items() if status != "removed"):
            raise LibraryError(f"the library at {s.library} is empty (run `livi scan PATH` first)")
        stored = cat.model_key()
        try:
            current = current_model_key(s)
        except LiviError:
            if need_model:
                raise
            current = None
        if stored and current and stored != current:
            raise ModelMismatchError(
                f"the library at {s.library} was built with another model ({stored}) than the configured one "
                f"({current}); run `livi scan` again to re-embed, or select the old model")
    except BaseException:
        cat.close()
        raise
    return cat


def clusters(s: Settings, *, min_similarity: float | None = None, min_size: int = 2, limit: int | None = None,
             query: str | None = None, include_duplicates: bool = False, prefer=()) -> list:
    """Cover clusters of the library (groups.clusters.ClusterReport list), from stored vectors only."""
    from livi_cli.errors import LibraryError
    from livi_cli.groups.clusters import DEFAULT_MIN_SIMILARITY, build_reports

    with _groups_catalog(s, need_model=True) as cat:
        ids, vecs = cat.embeddings()
        if not ids:
            raise LibraryError(f"the library at {s.library} has no embedded tracks (all failed or instrumental)")
        tracks = cat.tracks_by_id(ids)
    return build_reports(ids, vecs, tracks, min_similarity=DEFAULT_MIN_SIMILARITY if min_similarity is None
                         else min_similarity, min_size=min_size, limit=limit, query=query,
                         include_duplicates=include_duplicates, prefer=prefer)


def duplicates(s: Settings, *, prefer=(), limit: int | None = None) -> list:
    """Copies of the same recording (groups.duplicates.DuplicateGroup list), best copy first in each."""
    from livi_cli.groups.duplicates import find_duplicates

    with _groups_catalog(s, need_model=False) as cat:
        tracks = [t for t in cat.active_tracks() if t.status != "failed" or t.content_hash]
    groups = find_duplicates(tracks, prefer=prefer)
    return groups[:limit] if limit else groups
