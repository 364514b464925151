#!/usr/bin/env bash
# Sourced by the import benchmarks (bench/run.sh, alternate.sh, linear.sh,
# rush.sh): the psql reference a user would otherwise run, the timing
# helpers and the project's file generator. Needs PG (the psql command
# line) set by the caller, and the repository's root as working directory.

# gen FILE ARGS...: writes FILE with the project's generator (bench/gen,
# example gen_contacts) unless it exists; the generator is built on first use.
gen() {
  [ -x target/release/examples/gen_contacts ] || cargo build --release --locked --quiet --example gen_contacts
  [ -s "$1" ] || target/release/examples/gen_contacts "${@:2}" --out "$1"
}

# Every timed step starts from a clean checkpoint: otherwise the WAL of the
# step before (825 MB for a 1M-row load) is flushed during the next one, and
# whichever runs later pays for the others.
checkpoint() { $PG -c CHECKPOINT; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

# --- reference: psql \copy into an unlogged staging table + one upsert ------
ref_setup() {
$PG -c "DROP DATABASE IF EXISTS bench_ref" -c "CREATE DATABASE bench_ref"
# The reference's contacts table is shaped like dropfeed's (migrations/): the
# same columns and types, jsonb criteria, consents and attributes, the
# creating and updating run, timestamps, fillfactor and indexes. Only the
# birthdate stays text: without validation a bad date cannot be cast.
$PG -d bench_ref <<'SQL'
CREATE TABLE contacts (
  id bigserial PRIMARY KEY, tenant_id bigint NOT NULL, email text NOT NULL, language text NOT NULL,
  display text, civility text NOT NULL DEFAULT 'UNDEFINED', first_name text NOT NULL DEFAULT '-',
  last_name text NOT NULL DEFAULT '-', birthdate text, structure text, address text, postal_code text, town text,
  state text, country text, phone text, mobile text, criteria jsonb NOT NULL DEFAULT '{}',
  consents jsonb NOT NULL DEFAULT '{}', attributes jsonb NOT NULL DEFAULT '{}', created_by_run uuid NOT NULL,
  updated_by_run uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(), UNIQUE (tenant_id, email)
) WITH (fillfactor = 85);
CREATE INDEX contacts_created_by_run ON contacts USING brin (created_by_run);
CREATE UNLOGGED TABLE staging (email text, language text, display text, civility text, first_name text, last_name text,
  birthdate text, structure text, address text, postal_code text, town text, country text, phone text, mobile text,
  criteria_segment text, criteria_interest text, consent_newsletter text, consent_sms text, consent_partners text, customer_id text);
SQL
}
ref_import() {
  $PG -d bench_ref -c "TRUNCATE staging" \
    -c "\\copy staging FROM '$1' WITH (FORMAT csv, HEADER true, DELIMITER ';')" \
    -c "INSERT INTO contacts (tenant_id, email, language, display, civility, first_name, last_name, birthdate, structure,
          address, postal_code, town, country, phone, mobile, criteria, consents, attributes, created_by_run, updated_by_run)
        SELECT 1, lower(email), coalesce(language, 'FR'), display, coalesce(civility, 'UNDEFINED'),
          coalesce(first_name, '-'), coalesce(last_name, '-'), birthdate, structure, address, postal_code, town, country,
          phone, mobile,
          jsonb_strip_nulls(jsonb_build_object('segment', criteria_segment, 'interest', criteria_interest)),
          jsonb_strip_nulls(jsonb_build_object('newsletter', consent_newsletter, 'sms', consent_sms,
                                               'partners', consent_partners)),
          jsonb_strip_nulls(jsonb_build_object('customer_id', customer_id)), r.id, r.id
        FROM staging CROSS JOIN (SELECT gen_random_uuid() AS id) r
        ON CONFLICT (tenant_id, email) DO UPDATE SET language = excluded.language, display = excluded.display,
          civility = excluded.civility, first_name = excluded.first_name, last_name = excluded.last_name,
          birthdate = excluded.birthdate, structure = excluded.structure, address = excluded.address,
          postal_code = excluded.postal_code, town = excluded.town, country = excluded.country, phone = excluded.phone,
          mobile = excluded.mobile, criteria = contacts.criteria || excluded.criteria,
          consents = contacts.consents || excluded.consents, attributes = contacts.attributes || excluded.attributes,
          updated_by_run = excluded.updated_by_run, updated_at = now()"
}
