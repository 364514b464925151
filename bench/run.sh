#!/usr/bin/env bash
# Import benchmark: dropfeed beside the references a user would otherwise use,
# in one run on one machine (see README, "Performance").
#   bench/run.sh            1M-row files (and a 5M-row file for memory), then
#                           bench/transfer.sh and bench/scheduler.sh
#   ROWS=200000 BIG=1000000 TRANSFER=0 SCHEDULER=0 bench/run.sh   a quick look
# Needs PostgreSQL on 127.0.0.1:5432 (trust), python3, /usr/bin/time; installs
# pgloader with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
BIG=${BIG:-5000000}
PG="psql -h 127.0.0.1 -U postgres -q -v ON_ERROR_STOP=1"
DATA=${DATA:-bench/data}
mkdir -p "$DATA"
DATA=$(realpath "$DATA")

command -v pgloader >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgloader >/dev/null; }
cargo build --release --locked --quiet
BIN=target/release/dropfeed

gen() { [ -s "$1" ] || python3 bench/gen_contacts.py "${@:2}" --out "$1"; }
# SEED and INVALID change the files (their names say which they are).
SEED=${SEED:-42}
INVALID=${INVALID:-0.02}
A="$DATA/a-$ROWS-$SEED-$INVALID.csv"
B="$DATA/b-$ROWS-$SEED-$INVALID.csv"
BIGF="$DATA/big-$BIG-$SEED-$INVALID.csv"
gen "$A" --rows "$ROWS" --seed "$SEED" --invalid "$INVALID"
gen "$B" --rows "$ROWS" --start $((ROWS / 2)) --seed $((SEED + 1)) --invalid "$INVALID"
gen "$BIGF" --rows "$BIG" --seed "$SEED" --invalid "$INVALID"

# Every timed step starts from a clean checkpoint: otherwise the WAL of the
# step before (825 MB for a 1M-row load) is flushed during the next one, and
# whichever runs later pays for the others.
checkpoint() { $PG -c CHECKPOINT; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

# --- reference: psql \copy into an unlogged staging table + one upsert ------
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
checkpoint; t0=$(now); ref_import "$A"; t1=$(now); REF_A=$(elapsed "$t0" "$t1")
checkpoint; t0=$(now); ref_import "$B"; t1=$(now); REF_B=$(elapsed "$t0" "$t1")

# --- reference: pgloader of the same file ----------------------------------
$PG -c "DROP DATABASE IF EXISTS bench_pgloader" -c "CREATE DATABASE bench_pgloader"
$PG -d bench_pgloader -c "CREATE TABLE contacts (email text, language text, display text, civility text, first_name text,
  last_name text, birthdate text, structure text, address text, postal_code text, town text, country text, phone text,
  mobile text, criteria_segment text, criteria_interest text, consent_newsletter text, consent_sms text,
  consent_partners text, customer_id text)"
cat > "$DATA/load.pgl" <<PGL
LOAD CSV FROM '$A' WITH ENCODING utf-8
  INTO postgresql://postgres@127.0.0.1:5432/bench_pgloader?contacts
  WITH skip header = 1, fields terminated by ';', fields optionally enclosed by '"';
PGL
checkpoint; t0=$(now); pgloader --quiet "$DATA/load.pgl" >"$DATA/pgloader.log" 2>&1; t1=$(now); PGLOADER=$(elapsed "$t0" "$t1")
LOADED=$($PG -d bench_pgloader -Atc "SELECT count(*) FROM contacts")
[ "$LOADED" -ge $((ROWS * 9 / 10)) ] || { echo "pgloader loaded $LOADED rows: see $DATA/pgloader.log"; exit 1; }

# --- dropfeed ---------------------------------------------------------------
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_dropfeed
$PG -c "DROP DATABASE IF EXISTS bench_dropfeed"
$BIN tenant add bench --name Bench >/dev/null
df_import() { # file, extra args...; prints "seconds peak_kib"
  local out; out=$(mktemp)
  checkpoint
  /usr/bin/time -v -o "$out" $BIN import bench "$1" --mapping examples/mapping.yaml --max-messages 1 "${@:2}" >/dev/null 2>"$DATA/dropfeed.err" || { cat "$DATA/dropfeed.err" >&2; exit 1; }
  awk -F': ' '/Elapsed \(wall clock\)/ {split($2, t, ":"); s = (length(t) == 3) ? t[1]*3600 + t[2]*60 + t[3] : t[1]*60 + t[2]} /Maximum resident/ {m = $2} END {printf "%.2f %d\n", s, m}' "$out"
}
read -r DRY_A _ < <(df_import "$A" --dry-run)
read -r DF_A RSS_A < <(df_import "$A")
read -r DF_B RSS_B < <(df_import "$B")
$PG -c "DROP DATABASE IF EXISTS bench_dropfeed"
$BIN tenant add bench --name Bench >/dev/null
read -r DF_BIG RSS_BIG < <(df_import "$BIGF")

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}x')" "$1" "$2"; }
faster() { python3 -c "import sys; print(f'{float(sys.argv[2]) / float(sys.argv[1]):.2f}x faster')" "$1" "$2"; }
mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1024:.1f} MiB')" "$1"; }
echo
echo "rows per file: $ROWS ($INVALID invalid, seed $SEED); big file: $BIG rows"
printf '%-44s %10s %12s %14s %12s\n' "measure" "dropfeed" "reference" "ratio" "target"
printf '%-44s %9ss %11ss %14s %12s\n' "first import vs psql \\copy + upsert" "$DF_A" "$REF_A" "$(ratio "$DF_A" "$REF_A")" "<= 1.5x"
printf '%-44s %9ss %11ss %14s %12s\n' "overlapping file vs psql \\copy + upsert" "$DF_B" "$REF_B" "$(ratio "$DF_B" "$REF_B")" "<= 1.5x"
printf '%-44s %9ss %11ss %14s %12s\n' "first import vs pgloader" "$DF_A" "$PGLOADER" "$(faster "$DF_A" "$PGLOADER")" ">= 3x faster"
printf '%-44s %9ss %11ss %14s %12s\n' "dry run vs real import" "$DRY_A" "$DF_A" "$(ratio "$DRY_A" "$DF_A")" "< 0.25x"
printf '%-44s %10s %12s %14s %12s\n' "peak RSS, $ROWS rows" "$(mib "$RSS_A")" "" "" "<= 64 MiB"
printf '%-44s %10s %12s %14s %12s\n' "peak RSS, $BIG rows" "$(mib "$RSS_BIG")" "$(mib "$RSS_A")" "$(ratio "$RSS_BIG" "$RSS_A")" "<= 1.10x"
printf '%-44s %9ss\n' "import of the $BIG-row file" "$DF_BIG"

# --- transfer (part 4) and scheduler scale (part 5) ------------------------
if [ "${TRANSFER:-1}" = 1 ]; then
  echo; echo "transfer of a 150 MB file (bench/transfer.sh)"
  bash bench/transfer.sh
fi
if [ "${SCHEDULER:-1}" = 1 ]; then
  echo; echo "scheduler scale (bench/scheduler.sh)"
  BIN=$BIN bash bench/scheduler.sh 2>&1 | grep -v NOTICE
fi
