"""Catalog schema as an ordered list of migrations; PRAGMA user_version records the last one applied.

Add a migration by appending (next version, description, SQL); never edit an applied one. Catalog.open
applies the missing ones in order, each in its own transaction, and logs them in the `migrations` table.
"""
from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "initial schema", """
CREATE TABLE tracks (
    id INTEGER PRIMARY KEY,
    path BLOB NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT,
    title TEXT, artist TEXT, album TEXT, album_artist TEXT, track_number TEXT, date TEXT,
    duration REAL, codec TEXT, bitrate INTEGER, sample_rate INTEGER, channels INTEGER,
    mb_recording_id TEXT, mb_work_id TEXT, mb_release_id TEXT, isrc TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'instrumental', 'removed')),
    error TEXT,
    mean_vocalness REAL,
    n_windows INTEGER NOT NULL DEFAULT 0,
    segments TEXT,
    fingerprint BLOB,
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX tracks_hash ON tracks(content_hash);
CREATE INDEX tracks_status ON tracks(status);
CREATE TABLE embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL UNIQUE REFERENCES tracks(id) ON DELETE CASCADE,
    model_key TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB,
    created_at REAL NOT NULL
);
CREATE TABLE windows (
    embedding_id INTEGER NOT NULL REFERENCES embeddings(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (embedding_id, idx)
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE scans (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    model_key TEXT,
    roots TEXT,
    summary TEXT
);
"""),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
