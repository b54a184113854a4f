-- Notary v1 trust data (see src/trust/). Metadata files are kept with their
-- exact uploaded (or server-signed) bytes: hashes in snapshot/timestamp and
-- the {role}.{sha256}.json URLs are over these bytes. Every version is kept,
-- so clients can walk {N}.root.json and fetch by checksum.

CREATE TABLE tuf_files (
    id         INTEGER PRIMARY KEY,
    gun        TEXT NOT NULL,
    role       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    sha256     TEXT NOT NULL,      -- lowercase hex of data
    data       BLOB NOT NULL,
    created_at INTEGER NOT NULL,   -- unix nanoseconds (Last-Modified)
    UNIQUE (gun, role, version)
);
CREATE INDEX tuf_files_checksum ON tuf_files(gun, role, sha256);

-- Server-held timestamp/snapshot keys, sealed (Argon2id + XChaCha20-Poly1305)
-- under <root>/trust-key-secret. state: 'pending' until an uploaded root
-- lists the key, then 'active'.
CREATE TABLE trust_keys (
    id         INTEGER PRIMARY KEY,
    gun        TEXT NOT NULL,
    role       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    public_key TEXT NOT NULL,      -- {"keytype":…,"keyval":{…}}
    sealed     BLOB NOT NULL,
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (gun, key_id)
);
CREATE INDEX trust_keys_gun_role ON trust_keys(gun, role);

-- The changefeed: one row per timestamp write ('update') and per GUN
-- deletion ('deletion'). AUTOINCREMENT: ids are never reused.
CREATE TABLE trust_changes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,   -- unix nanoseconds
    gun        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    category   TEXT NOT NULL
);
CREATE INDEX trust_changes_gun ON trust_changes(gun, id);
