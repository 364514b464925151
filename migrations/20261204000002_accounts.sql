-- Issue 15, part 1: accounts, API tokens and the audit log (SPEC §8.1).

-- People who log in to the API and console. A tenant user names its tenant;
-- admin and support users see every tenant.
CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    -- Trimmed and lower-cased.
    email          text NOT NULL UNIQUE,
    role           text NOT NULL CHECK (role IN ('admin', 'support', 'tenant')),
    tenant_id      bigint REFERENCES tenants (id),
    -- argon2id, PHC string format (algorithm, parameters, salt, hash).
    password_hash  text NOT NULL,
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'tenant') = (tenant_id IS NOT NULL))
);

-- Tokens for scripts. The token itself is shown once and never stored: its
-- first 12 characters (the prefix) name it, and its SHA-256 checks it. A
-- token holds 256 random bits, so a fast hash is enough: nothing can be
-- guessed from it, unlike a password.
CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    prefix        text NOT NULL UNIQUE,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'support', 'tenant')),
    tenant_id     bigint REFERENCES tenants (id),
    sha256        bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CHECK ((role = 'tenant') = (tenant_id IS NOT NULL))
);

-- Every change, who made it, when, from where. `detail` never holds a secret.
CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    -- 'user:EMAIL', 'token:PREFIX' or 'cli:LOGIN'
    actor      text NOT NULL,
    -- The client address, or 'cli'.
    source     text NOT NULL,
    tenant_id  bigint,
    action     text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at DESC, id DESC);
