-- Feeds (a tenant's scheduled import) and the record of every remote file
-- taken, which makes pickup at-most-once across restarts and replicas.

CREATE TABLE feeds (
    id                bigserial PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id),
    name              text NOT NULL,
    -- The feed as applied (JSON text of the YAML; secrets are only referenced).
    spec              text NOT NULL,
    paused            boolean NOT NULL DEFAULT false,
    -- When the scheduler next polls it; a past value is due now (a run missed
    -- while no daemon was up runs once, then the schedule resumes).
    next_run_at       timestamptz NOT NULL,
    last_run_at       timestamptz,
    last_status       text,
    last_error        text,
    -- The claim of the daemon polling it (river-style lease): another daemon
    -- may take the feed over once lease_expires_at has passed.
    lease_owner       text,
    lease_expires_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX feeds_due ON feeds (next_run_at) WHERE NOT paused;

CREATE TABLE processed_files (
    id           bigserial PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    feed_id      bigint NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    -- Name in the drop folder, size and mtime as listed when it was taken.
    name         text NOT NULL,
    size         bigint NOT NULL,
    mtime        timestamptz,
    sha256       text NOT NULL,
    run_id       uuid,
    -- imported: its rows were committed with this record; failed: refused
    -- or aborted, nothing written; duplicate: same content as an imported file.
    outcome      text NOT NULL CHECK (outcome IN ('imported', 'failed', 'duplicate')),
    -- Set once the after_success / after_failure action has been done.
    disposed_at  timestamptz,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
-- The same content is imported at most once per tenant, whatever its name:
-- a second transaction inserting it waits for the first and then fails.
CREATE UNIQUE INDEX processed_files_content ON processed_files (tenant_id, sha256) WHERE outcome = 'imported';
CREATE INDEX processed_files_identity ON processed_files (feed_id, name, size);
