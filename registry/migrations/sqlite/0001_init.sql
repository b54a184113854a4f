-- bay-registry metadata schema (SQLite). Written in the portable subset of
-- SQL so the PostgreSQL schema differs only in column types (BYTEA, BIGINT).

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- Global content-addressed blobs: one row per stored object.
CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Which repository may read which blob (the access check for blob reads).
CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT NOT NULL REFERENCES blobs(digest),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

-- Manifests keep their exact bytes here, so a manifest and its tags are
-- written in one transaction: a crash never leaves a tag without bytes.
CREATE TABLE manifests (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    artifact_type TEXT,
    subject       TEXT,
    annotations   TEXT,
    size          INTEGER NOT NULL,
    content       BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repository_id, subject);

-- Descriptors a manifest points at (blobs and child manifests), for
-- integrity checks and garbage collection.
CREATE TABLE manifest_references (
    repository_id INTEGER NOT NULL,
    parent        TEXT NOT NULL,
    child         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    PRIMARY KEY (repository_id, parent, child),
    FOREIGN KEY (repository_id, parent) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_references_child ON manifest_references(child);

CREATE TABLE tags (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    digest        TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX tags_digest ON tags(repository_id, digest);

-- Upload sessions; `size` is the acknowledged length of the staged file.
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    repository  TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX uploads_updated ON uploads(updated_at);
