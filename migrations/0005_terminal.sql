-- Associate terminal: staff with argon2 PIN hashes, login sessions, and failed-login lockouts.
CREATE TABLE IF NOT EXISTS terminal_staff (
    staff      TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('associate', 'manager')),
    pin_hash   TEXT NOT NULL
);

-- Only the SHA-256 of a session token is stored; the token itself lives in the cookie.
CREATE TABLE IF NOT EXISTS terminal_sessions (
    token_sha256 TEXT PRIMARY KEY,
    staff        TEXT NOT NULL,
    role         TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS terminal_sessions_expiry ON terminal_sessions (expires_ms);

CREATE TABLE IF NOT EXISTS terminal_login_failures (
    staff           TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    locked_until_ms INTEGER NOT NULL
);
