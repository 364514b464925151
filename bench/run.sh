#!/usr/bin/env bash
# Import benchmark: dropfeed beside the references a user would otherwise use,
# in one run on one machine (see README, "Performance"):
#   1. imports timed against psql \copy + upsert and pgloader;
#   2. the peak RSS of every default command (no --max-messages) on ROWS and
#      BIG rows: import (text, JSON, with the report e-mail), runs show (text,
#      JSON), runs rejects, contacts export (plain, --old-new), criteria list;
#   3. the export right after an import, after a crash and recovery, and on
#      tables without statistics, against the same export after ANALYZE;
#   then bench/transfer.sh and bench/scheduler.sh.
#   bench/run.sh            1M-row files, 5M rows for memory
#   ROWS=200000 BIG=1000000 TRANSFER=0 SCHEDULER=0 bench/run.sh   a quick look
# Files come from the project's generator (bench/gen, example gen_contacts).
# Needs PostgreSQL on 127.0.0.1:5432 (trust), python3 with aiosmtpd (Debian's
# python3-aiosmtpd), /usr/bin/time; installs pgloader with apt-get when missing.
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
cargo build --release --locked --quiet --example gen_contacts
BIN=target/release/dropfeed

# shellcheck source=bench/reference.sh
. bench/reference.sh
# SEED and INVALID change the files (their names say which they are).
SEED=${SEED:-42}
INVALID=${INVALID:-0.03}
A="$DATA/a-rs-$ROWS-$SEED-$INVALID.csv"
B="$DATA/b-rs-$ROWS-$SEED-$INVALID.csv"
BIGF="$DATA/big-rs-$BIG-$SEED-$INVALID.csv"
gen "$A" --rows "$ROWS" --seed "$SEED" --invalid "$INVALID"
gen "$B" --rows "$ROWS" --start $((ROWS / 2)) --seed $((SEED + 1)) --invalid "$INVALID"
gen "$BIGF" --rows "$BIG" --seed "$SEED" --invalid "$INVALID"

ref_setup
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
fresh_db() { $PG -c "DROP DATABASE IF EXISTS bench_dropfeed"; $BIN migrate >/dev/null; }
fresh_db
$BIN tenant add bench --name Bench >/dev/null
# measure NAME CMD...: runs a command as a user would (its output to a file),
# records "seconds peak_kib" under NAME in $DATA/measures.
: >"$DATA/measures"
measure() {
  local name=$1 out; shift; out=$(mktemp)
  checkpoint
  /usr/bin/time -v -o "$out" "$@" >"$DATA/last.out" 2>"$DATA/dropfeed.err" \
    || { [ "${ALLOW_FAIL:-0}" = 1 ] || { cat "$DATA/dropfeed.err" >&2; exit 1; }; }
  awk -F': ' -v n="$name" '/Elapsed \(wall clock\)/ {split($2, t, ":"); s = (length(t) == 3) ? t[1]*3600 + t[2]*60 + t[3] : t[1]*60 + t[2]} /Maximum resident/ {m = $2} END {printf "%s %.2f %d\n", n, s, m}' "$out" >>"$DATA/measures"
  rm -f "$out"
}
secs_of() { awk -v n="$1" '$1 == n {print $2}' "$DATA/measures"; }
kib_of() { awk -v n="$1" '$1 == n {print $3}' "$DATA/measures"; }
last_run() { $PG -d bench_dropfeed -Atc "SELECT id FROM runs ORDER BY started_at DESC LIMIT 1"; }
import_cmd() { echo "$BIN import $1 $2 --mapping examples/mapping.yaml --list nightly"; }

measure dry_a $(import_cmd bench "$A") --dry-run
measure import_a $(import_cmd bench "$A")
measure import_b $(import_cmd bench "$B")

# A real SMTP listener for the report e-mail (aiosmtpd, messages kept in a maildir).
SMTP_PORT=${SMTP_PORT:-2525}
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$DATA/maildir" &
SMTP_PID=$!
trap 'kill $SMTP_PID 2>/dev/null || true' EXIT
printf 'smtp:\n  host: 127.0.0.1\n  port: %s\n  from: bench@example.com\n' "$SMTP_PORT" >"$DATA/bench.yaml"

# memory SIZE FILE: every default command on a fresh database holding FILE.
memory() {
  local size=$1 file=$2 run
  fresh_db
  for t in text json mail; do $BIN tenant add "$t" --name "$t" >/dev/null; done
  measure "import_text_$size" $(import_cmd text "$file")
  run=$(last_run)
  measure "import_json_$size" $(import_cmd json "$file") --format json
  measure "import_mail_$size" $(import_cmd mail "$file") --config "$DATA/bench.yaml" --report-to ops@example.com
  $PG -d bench_dropfeed -Atc "SELECT status || ' ' || coalesce(attachment_name, 'no attachment') || ' ' || coalesce(octet_length(attachment), 0) FROM notifications ORDER BY id DESC LIMIT 1" >"$DATA/mail_$size"
  measure "show_text_$size" "$BIN" runs show "$run"
  measure "show_json_$size" "$BIN" runs show "$run" --format json
  measure "rejects_$size" "$BIN" runs rejects "$run"
  measure "export_$size" "$BIN" contacts export text
  measure "export_old_new_$size" "$BIN" contacts export text --old-new criteria
  measure "criteria_$size" "$BIN" criteria list text
}
memory small "$A"
memory big "$BIGF"

# --- the export: after an import, a crash and recovery, no statistics -------
# A fresh database as after a crash: autovacuum off for the tables the export
# reads, an import SIGKILLed while it writes (its rows stay, dead), then the
# same file imported again; each export is timed, then again after ANALYZE.
fresh_db
$BIN tenant add bench --name Bench >/dev/null
$PG -d bench_dropfeed -c "ALTER TABLE contacts SET (autovacuum_enabled = false)" \
  -c "ALTER TABLE list_members SET (autovacuum_enabled = false)"
measure first_import $(import_cmd bench "$A")
RUN=$(last_run)
export_run() { measure "$1" "$BIN" contacts export bench --created-by-run "$RUN" -o "$DATA/export.csv"; }
analyze() { $PG -d bench_dropfeed -c "ANALYZE contacts" -c "ANALYZE list_members" -c "ANALYZE organisations"; }
# What a database whose statistics never came looks like to the planner.
wipe_stats() {
  $PG -d bench_dropfeed -c "DELETE FROM pg_statistic WHERE starelid IN ('contacts'::regclass, 'list_members'::regclass, 'organisations'::regclass)" \
    -c "UPDATE pg_class SET reltuples = -1 WHERE oid IN ('contacts'::regclass, 'list_members'::regclass, 'organisations'::regclass)"
}
export_run export_after_import
analyze; export_run export_after_import_analyzed
wipe_stats; export_run export_no_stats
fresh_db
$BIN tenant add bench --name Bench >/dev/null
$PG -d bench_dropfeed -c "ALTER TABLE contacts SET (autovacuum_enabled = false)" \
  -c "ALTER TABLE list_members SET (autovacuum_enabled = false)"
# SIGKILLed a second into its insert of the contacts; its backend finishes
# the statement, finds the client gone and rolls back: the rows stay, dead.
$(import_cmd bench "$A") >/dev/null 2>&1 &
VICTIM=$!
until [ "$($PG -d bench_dropfeed -Atc "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'WITH inserted AS (INSERT INTO contacts%'")" = 1 ]; do
  kill -0 $VICTIM 2>/dev/null || { echo "the import to kill ended before its insert"; exit 1; }
  sleep 0.1
done
sleep 1; kill -KILL $VICTIM; wait $VICTIM 2>/dev/null || true
until [ "$($PG -d bench_dropfeed -Atc "SELECT count(*) FROM pg_stat_activity WHERE datname = 'bench_dropfeed' AND pid <> pg_backend_pid()")" = 0 ]; do sleep 0.2; done
sleep 1  # the statistics of the rolled-back insert reach pg_stat_user_tables
DEAD=$($PG -d bench_dropfeed -Atc "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'contacts'")
measure reimport $(import_cmd bench "$A")
RUN=$(last_run)
export_run export_after_crash
analyze; export_run export_after_crash_analyzed
wipe_stats; export_run export_after_crash_no_stats

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}x')" "$1" "$2"; }
faster() { python3 -c "import sys; print(f'{float(sys.argv[2]) / float(sys.argv[1]):.2f}x faster')" "$1" "$2"; }
mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1024:.1f} MiB')" "$1"; }
DF_A=$(secs_of import_a); DF_B=$(secs_of import_b); DRY_A=$(secs_of dry_a)
echo
echo "rows per file: $ROWS ($INVALID invalid, seed $SEED); big file: $BIG rows"
printf '%-44s %10s %12s %14s %12s\n' "measure" "dropfeed" "reference" "ratio" "target"
printf '%-44s %9ss %11ss %14s %12s\n' "first import vs psql \\copy + upsert" "$DF_A" "$REF_A" "$(ratio "$DF_A" "$REF_A")" "<= 1.5x"
printf '%-44s %9ss %11ss %14s %12s\n' "overlapping file vs psql \\copy + upsert" "$DF_B" "$REF_B" "$(ratio "$DF_B" "$REF_B")" "<= 1.5x"
printf '%-44s %9ss %11ss %14s %12s\n' "first import vs pgloader" "$DF_A" "$PGLOADER" "$(faster "$DF_A" "$PGLOADER")" ">= 3x faster"
printf '%-44s %9ss %11ss %14s %12s\n' "dry run vs real import" "$DRY_A" "$DF_A" "$(ratio "$DRY_A" "$DF_A")" "< 0.25x"

echo
echo "peak RSS of the default commands (no --max-messages), $ROWS and $BIG rows"
printf '%-44s %10s %10s %10s %12s %10s\n' "command" "$ROWS" "$BIG" "ratio" "target" "time ($BIG)"
for m in "import_text:import (text report)" "import_json:import --format json" \
         "import_mail:import --report-to (the e-mail)" "show_text:runs show" "show_json:runs show --format json" \
         "rejects:runs rejects" "export:contacts export" "export_old_new:contacts export --old-new criteria" \
         "criteria:criteria list"; do
  key=${m%%:*}; label=${m#*:}
  s=$(kib_of "${key}_small"); b=$(kib_of "${key}_big")
  printf '%-44s %10s %10s %10s %12s %9ss\n' "$label" "$(mib "$s")" "$(mib "$b")" "$(ratio "$b" "$s")" "<= 64 MiB" "$(secs_of "${key}_big")"
done
echo "report e-mail, $ROWS rows: $(cat "$DATA/mail_small"); $BIG rows: $(cat "$DATA/mail_big")"

echo
echo "contacts export --created-by-run (the $ROWS-row import's contacts) vs the same export after ANALYZE"
printf '%-44s %10s %12s %10s\n' "when" "export" "analysed" "ratio"
A1=$(secs_of export_after_import_analyzed); A2=$(secs_of export_after_crash_analyzed)
printf '%-44s %9ss %11ss %10s\n' "right after an import" "$(secs_of export_after_import)" "$A1" "$(ratio "$(secs_of export_after_import)" "$A1")"
printf '%-44s %9ss %11ss %10s\n' "tables without statistics" "$(secs_of export_no_stats)" "$A1" "$(ratio "$(secs_of export_no_stats)" "$A1")"
printf '%-44s %9ss %11ss %10s\n' "after a crash ($DEAD dead rows) and re-import" "$(secs_of export_after_crash)" "$A2" "$(ratio "$(secs_of export_after_crash)" "$A2")"
printf '%-44s %9ss %11ss %10s\n' "after a crash, without statistics" "$(secs_of export_after_crash_no_stats)" "$A2" "$(ratio "$(secs_of export_after_crash_no_stats)" "$A2")"
printf '%-44s %9ss\n' "the re-import after the crash" "$(secs_of reimport)"

# --- transfer (part 4) and scheduler scale (part 5) ------------------------
if [ "${TRANSFER:-1}" = 1 ]; then
  echo; echo "transfer of a 150 MB file (bench/transfer.sh)"
  bash bench/transfer.sh
fi
if [ "${SCHEDULER:-1}" = 1 ]; then
  echo; echo "scheduler scale (bench/scheduler.sh)"
  BIN=$BIN bash bench/scheduler.sh 2>&1 | grep -v NOTICE
fi
