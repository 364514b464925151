-- The initial schema: tenants, saved profiles, runs and their messages,
-- contacts with their lists. Every contact row carries the run that created
-- it and the run that last changed it ("créé au moyen de", seed 002).

CREATE TABLE tenants (
    id          bigserial PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    timezone    text NOT NULL DEFAULT 'UTC',
    -- Language of reports and messages for this tenant: 'fr' or 'en'.
    language    text NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en')),
    -- Contact language codes accepted besides FR and EN (upper-case).
    extra_languages text[] NOT NULL DEFAULT '{}',
    report_to   text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE profiles (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    -- The profile as JSON text, not jsonb: the order of `columns` is the
    -- order of the header that strict header drift compares against.
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name, version)
);

CREATE TABLE runs (
    id                uuid PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id),
    feed              text,
    status            text NOT NULL CHECK (status IN
                        ('running', 'succeeded', 'succeeded_with_warnings', 'failed', 'aborted', 'dry_run')),
    dry_run           boolean NOT NULL DEFAULT false,
    profile_name      text,
    profile_version   integer,
    file_name         text NOT NULL,
    file_size         bigint NOT NULL,
    file_sha256       text NOT NULL,
    -- Options actually applied (mode, lists, ...) and the column mapping.
    options           jsonb NOT NULL DEFAULT '{}',
    columns           jsonb NOT NULL DEFAULT '{}',
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    rows              bigint NOT NULL DEFAULT 0,
    inserted          bigint NOT NULL DEFAULT 0,
    updated           bigint NOT NULL DEFAULT 0,
    unchanged         bigint NOT NULL DEFAULT 0,
    skipped_existing  bigint NOT NULL DEFAULT 0,
    skipped_new       bigint NOT NULL DEFAULT 0,
    rejected          bigint NOT NULL DEFAULT 0,
    warnings          bigint NOT NULL DEFAULT 0,
    -- Always complete, even when run_messages was truncated.
    by_code           jsonb NOT NULL DEFAULT '{}',
    messages_truncated boolean NOT NULL DEFAULT false,
    -- One-line reason of a failed or aborted run.
    error             text
);
CREATE INDEX runs_tenant_started ON runs (tenant_id, started_at DESC);
CREATE INDEX runs_tenant_sha ON runs (tenant_id, file_sha256);

CREATE TABLE run_messages (
    run_id      uuid NOT NULL,  -- no FK: written in bulk with its run, see contacts below
    line        bigint NOT NULL,
    column_name text,
    code        text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('error', 'warning')),
    value       text,
    message     text NOT NULL
);
CREATE INDEX run_messages_run_line ON run_messages (run_id, line);

-- contacts and list_members carry no foreign keys: PostgreSQL checks them
-- with one trigger query per row, which more than doubled the time of a
-- 1M-row import (42 s -> 19 s without them). Both tables are written only by
-- import::write, set-based, inside the import transaction, with tenant, run,
-- list and contact ids that exist in that transaction.
CREATE TABLE contacts (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL,
    -- Trimmed and lower-cased: the identity of a contact within a tenant.
    email           text NOT NULL,
    language        text NOT NULL,
    display         text,
    civility        text NOT NULL DEFAULT 'UNDEFINED',
    first_name      text NOT NULL DEFAULT '-',
    last_name       text NOT NULL DEFAULT '-',
    birthdate       date,
    structure       text,
    address         text,
    postal_code     text,
    town            text,
    state           text,
    -- ISO 3166-1 alpha-2.
    country         text,
    phone           text,
    mobile          text,
    -- criterion code -> internal value code
    criteria        jsonb NOT NULL DEFAULT '{}',
    -- consent name -> true/false (absent key: no value)
    consents        jsonb NOT NULL DEFAULT '{}',
    -- attribute name -> text
    attributes      jsonb NOT NULL DEFAULT '{}',
    created_by_run  uuid NOT NULL,
    updated_by_run  uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, email)
) WITH (fillfactor = 85);  -- room on each page for HOT updates of nightly files
-- "Contacts created by this file" (seed 002). Run ids are UUIDv7 (time
-- ordered) and new contacts are appended, so a BRIN index answers the query
-- and costs almost nothing on a million-row insert, unlike a btree.
CREATE INDEX contacts_created_by_run ON contacts USING brin (created_by_run);

CREATE TABLE lists (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE list_members (
    list_id       bigint NOT NULL,
    contact_id    bigint NOT NULL,
    added_by_run  uuid NOT NULL,
    added_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, contact_id)
);
