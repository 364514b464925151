-- Issue 15: console sessions (SPEC §8.1) and login throttling.

-- A logged-in browser. The cookie holds 256 random bits; only their SHA-256
-- is kept, so a copy of this table logs nobody in. `csrf` is the token every
-- state-changing request of the session must repeat in a header or form.
CREATE TABLE sessions (
    id_sha256     bytea PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf          text NOT NULL,
    client        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Failed logins are audit entries; throttling counts the recent ones by
-- account and by client address.
CREATE INDEX audit_log_login_failed ON audit_log (at) WHERE action = 'login.failed';
