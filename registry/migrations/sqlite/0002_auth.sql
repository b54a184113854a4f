-- Accounts, access rules, personal access tokens and refresh tokens.
-- Secrets are never stored: passwords as argon2id PHC strings, tokens as
-- SHA-256 of their high-entropy random secret.

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    admin         INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE user_groups (
    user_name  TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_name, group_name)
);

-- subject_kind: 'user' | 'group' | 'anonymous'; actions: comma list.
CREATE TABLE acl_rules (
    id           INTEGER PRIMARY KEY,
    subject_kind TEXT NOT NULL,
    subject      TEXT NOT NULL,
    pattern      TEXT NOT NULL,
    actions      TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE personal_tokens (
    id           TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX personal_tokens_user ON personal_tokens(user_name);

CREATE TABLE refresh_tokens (
    hash         TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    service      TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    pat_id       TEXT REFERENCES personal_tokens(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_name);
