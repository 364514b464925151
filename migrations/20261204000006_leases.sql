-- Named leases for work that one replica at a time must do (the archive's
-- retention purge): taken when free or expired, renewed by its owner.
CREATE TABLE leases (
    name        text PRIMARY KEY,
    owner       text NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Held runs not yet released: their archived files must survive retention.
CREATE INDEX runs_held_unreleased ON runs (tenant_id, file_sha256) WHERE status = 'held' AND rerun_by IS NULL;
