-- Issue 8: lists replaced by a file, runs held by a guard and released by a
-- person, runs replayed from the archived copy of their file, organisations.

-- held: a guard stopped the run before anything was written; the file waits
-- in the spool archive for `dropfeed runs release`.
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN
    ('running', 'succeeded', 'succeeded_with_warnings', 'failed', 'aborted', 'dry_run', 'held'));
-- mode replace_list: memberships of the profile's lists that the file no
-- longer has (the contacts stay).
ALTER TABLE runs ADD COLUMN removed_from_list bigint NOT NULL DEFAULT 0;
-- The run this one re-imports (`runs release`, `runs replay`), and, on the
-- first run, the run that released or replayed it: set in the transaction of
-- the new run, so a held file is released at most once.
ALTER TABLE runs ADD COLUMN rerun_of uuid;
ALTER TABLE runs ADD COLUMN rerun_by uuid;

ALTER TABLE processed_files DROP CONSTRAINT processed_files_outcome_check;
ALTER TABLE processed_files ADD CONSTRAINT processed_files_outcome_check
    CHECK (outcome IN ('imported', 'failed', 'duplicate', 'held'));

-- Seed 002: a structure with its address identifies an organisation; a line
-- naming the same structure at the same address links to it. `key` is the
-- normalised name and address (lower case, single spaces), unique per tenant.
CREATE TABLE organisations (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    key             text NOT NULL,
    name            text NOT NULL,
    address         text,
    postal_code     text,
    town            text,
    country         text,
    created_by_run  uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key)
);
-- No foreign key, as for the other columns import::write fills set-based.
ALTER TABLE contacts ADD COLUMN organisation_id bigint;
ALTER TABLE runs ADD COLUMN organisations_created bigint NOT NULL DEFAULT 0;
