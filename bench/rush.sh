#!/usr/bin/env bash
# The nightly rush (issue 18): TENANTS feeds whose files (50,000 to 500,000
# rows, one of 2,000,000) all become due at once on one daemon with
# `workers: 4`. Measures the time until the last file is imported, against
# the sum of the same polls run one by one (`feed run`, the daemon's code
# path); the daemon's peak RSS; how long each file waited for a worker; and,
# sampled every second, what PostgreSQL's import sessions were waiting on.
#   bench/rush.sh
#   SIZES="2000000 500000 50000" bench/rush.sh    other files
# Needs PostgreSQL on 127.0.0.1:5432 (trust), /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"2000000 500000 450000 400000 350000 300000 250000 200000 150000 125000 100000 100000 75000 75000 50000 50000 50000 50000 50000 50000"}
WORKERS=${WORKERS:-4}
SEED=${SEED:-42}
DATA=$(realpath "${DATA:-bench/data}")
WORK=$(mktemp -d /tmp/dropfeed-rush.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PG="psql -h 127.0.0.1 -U postgres -q -v ON_ERROR_STOP=1"
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_rush
[ -n "${BIN:-}" ] || { cargo build --release --locked --quiet; BIN=target/release/dropfeed; }
# shellcheck source=bench/reference.sh
. bench/reference.sh
mkdir -p "$DATA"
read -r -a sizes <<<"$SIZES"
for i in "${!sizes[@]}"; do
  f="$DATA/rush-$i-${sizes[$i]}.csv"
  gen "$f" --rows "${sizes[$i]}" --seed $((SEED + i)) --invalid 0.03
done

# A fresh database, one tenant per file with its saved profile and a feed on
# its own file:// folder holding its file.
setup() {
  $PG -c "DROP DATABASE IF EXISTS bench_rush" >/dev/null
  "$BIN" migrate >/dev/null
  rm -rf "$WORK/drop" "$WORK/spool" "$WORK/feeds"; mkdir -p "$WORK/drop" "$WORK/feeds"
  head -n 11 examples/contacts.csv >"$WORK/sample.csv"
  for i in "${!sizes[@]}"; do
    "$BIN" tenant add "t$i" --name "Tenant $i" >/dev/null
    "$BIN" import "t$i" "$WORK/sample.csv" --mapping examples/mapping.yaml --dry-run --save-profile nightly >/dev/null
    mkdir -p "$WORK/drop/t$i"
    ln "$DATA/rush-$i-${sizes[$i]}.csv" "$WORK/drop/t$i/contacts_$i.csv"
    cat >"$WORK/feeds/t$i.yaml" <<YAML
tenant: t$i
name: nightly
source:
  url: file://$WORK/drop/t$i
  pattern: "contacts_*.csv"
schedule:
  cron: "0 2 * * *"
  timezone: Europe/Zurich
pickup: { min_age_secs: 0, stable_secs: 0 }
after_success: { move_to: processed }
profile: nightly
YAML
  done
  "$BIN" feed apply "$WORK"/feeds/*.yaml >/dev/null
  cat >"$WORK/config.yaml" <<YAML
database_url: $DATABASE_URL
spool_dir: $WORK/spool
workers: $WORKERS
scheduler:
  tick_ms: 500
YAML
}

# --- one by one ---------------------------------------------------------------
setup
: >"$WORK/serial"
for i in "${!sizes[@]}"; do
  $PG -c CHECKPOINT
  t0=$(date +%s.%N)
  "$BIN" --config "$WORK/config.yaml" feed run "t$i/nightly" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$i ${sizes[$i]} $(python3 -c "print(f'{$t1 - $t0:.2f}')")" >>"$WORK/serial"
done
SERIAL=$(awk '{s += $3} END {printf "%.2f", s}' "$WORK/serial")

# --- the rush -----------------------------------------------------------------
setup
$PG -c CHECKPOINT
# Every feed due now, then the daemon: the first tick claims them.
DUE=$($PG -d bench_rush -Atc "UPDATE feeds SET next_run_at = now() RETURNING extract(epoch FROM now())" | head -n1)
/usr/bin/time -v -o "$WORK/daemon.time" "$BIN" --config "$WORK/config.yaml" run >"$WORK/daemon.log" 2>&1 &
TIMED=$!
# What the import sessions wait on, once a second (NULL: on the CPU).
: >"$WORK/waits"
while [ "$($PG -d bench_rush -Atc "SELECT count(*) FROM runs WHERE feed IS NOT NULL AND finished_at IS NOT NULL")" -lt ${#sizes[@]} ]; do
  $PG -d bench_rush -Atc "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
    WHERE datname = 'bench_rush' AND state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()" >>"$WORK/waits"
  sleep 1
done
pkill -TERM -P "$TIMED" 2>/dev/null || true
wait $TIMED || true
PEAK=$(awk -F': ' '/Maximum resident/ {printf "%.1f", $2 / 1024}' "$WORK/daemon.time")

echo
echo "Nightly rush: ${#sizes[@]} feeds due at once, workers: $WORKERS ($(awk '{s += $2} END {print s}' "$WORK/serial") rows)"
$PG -d bench_rush -Atc "SELECT t.slug, r.rows, r.status,
      round(extract(epoch FROM r.started_at) - $DUE, 2) AS waited,
      round(extract(epoch FROM r.finished_at - r.started_at), 2) AS took,
      round(extract(epoch FROM r.finished_at) - $DUE, 2) AS done_at
    FROM runs r JOIN tenants t ON t.id = r.tenant_id WHERE r.feed IS NOT NULL ORDER BY r.started_at" \
  | awk -F'|' 'BEGIN {printf "%-6s %10s %-24s %8s %8s %8s\n", "tenant", "rows", "status", "waited", "took", "done at"}
               {printf "%-6s %10s %-24s %7ss %7ss %7ss\n", $1, $2, $3, $4, $5, $6}'
LAST=$($PG -d bench_rush -Atc "SELECT round(max(extract(epoch FROM finished_at)) - $DUE, 2) FROM runs WHERE feed IS NOT NULL")
echo
printf '%-44s %10s\n' "last file imported, after the due time" "${LAST} s"
printf '%-44s %10s\n' "the same polls one by one (sum)" "${SERIAL} s"
printf '%-44s %10s\n' "rush / serial" "$(python3 -c "print(f'{$LAST / $SERIAL:.2f}x')")"
printf '%-44s %10s\n' "daemon peak RSS" "${PEAK} MiB"
echo
echo "PostgreSQL import sessions, sampled each second (share of samples):"
sort "$WORK/waits" | uniq -c | sort -rn | awk -v n="$(wc -l <"$WORK/waits")" '{printf "  %-40s %5.1f%%\n", $2, 100 * $1 / n}'
