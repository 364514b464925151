#!/usr/bin/env bash
# Console benchmark (issue 16): every page's server time with RUNS runs and
# a run of MESSAGES messages in the database, as a logged-in support user;
# prints the pages slowest first (the median and the worst of REPEAT loads)
# against the target of 100 ms.
#   bench/console.sh                         100,000 runs, 1,000,000 messages
#   RUNS=20000 MESSAGES=200000 bench/console.sh   a quick look
# Needs PostgreSQL on 127.0.0.1:5432 (trust) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-100000}
MESSAGES=${MESSAGES:-1000000}
REPEAT=${REPEAT:-7}
PORT=${PORT:-18482}
PG="psql -h 127.0.0.1 -U postgres -q -v ON_ERROR_STOP=1"
DATA=${DATA:-bench/data}
mkdir -p "$DATA"
DATA=$(realpath "$DATA")
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example gen_contacts
BIN=$(realpath target/release/dropfeed)
# Every row of this file is invalid, once: MESSAGES errors in one run.
F="$DATA/console-$MESSAGES.csv"
[ -s "$F" ] || target/release/examples/gen_contacts --rows "$MESSAGES" --seed 7 --invalid 1.0 --out "$F"

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_console
$PG -c "DROP DATABASE IF EXISTS bench_console" -c "CREATE DATABASE bench_console"
$BIN migrate >/dev/null
$BIN tenant add bench --name Bench >/dev/null
mkdir -p "$DATA/console-drop"
# The profile takes every line, however many are rejected.
target/release/examples/gen_contacts --rows 10 --seed 7 --invalid 0 --out "$DATA/console-sample.csv"
sed 's/^max_invalid_ratio:.*//' examples/mapping.yaml >"$DATA/console-mapping.yaml"
echo "max_invalid_ratio: 1.0" >>"$DATA/console-mapping.yaml"
$BIN import bench "$DATA/console-sample.csv" --mapping "$DATA/console-mapping.yaml" --dry-run --save-profile nightly >/dev/null
$BIN import bench "$F" --profile nightly --format json --max-messages 1 >"$DATA/console-run.json" || true
BIG=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run_id"])' "$DATA/console-run.json")
# And a run whose messages are mostly warnings (stored compactly, one row per
# rule and value, read back through a view): the nightly file of the import bench.
W="$DATA/a-rs-$MESSAGES-42-0.03.csv"
[ -s "$W" ] || target/release/examples/gen_contacts --rows "$MESSAGES" --seed 42 --invalid 0.03 --out "$W"
$BIN import bench "$W" --profile nightly --format json --max-messages 1 >"$DATA/console-warn.json" || true
WARN=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run_id"])' "$DATA/console-warn.json")
STORED=$($PG -d bench_console -Atc "SELECT (SELECT count(*) FROM run_messages) + (SELECT coalesce(sum(cardinality(lines)), 0) FROM run_warnings)")
printf 'tenant: bench\nname: nightly\nsource:\n  url: file://%s\nschedule:\n  cron: "0 30 2 * * *"\nprofile: nightly\n' "$DATA/console-drop" >"$DATA/console-feed.yaml"
$BIN feed apply "$DATA/console-feed.yaml" >/dev/null
$PG -d bench_console <<SQL
INSERT INTO runs (id, tenant_id, feed, status, file_name, file_size, file_sha256, started_at, finished_at, rows, inserted)
SELECT gen_random_uuid(), tenant_id, CASE WHEN g % 2 = 0 THEN 'nightly' END,
       CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'succeeded' END, 'contacts_' || g || '.csv', file_size, file_sha256,
       started_at - g * interval '1 hour', started_at - g * interval '1 hour' + interval '20 seconds', 1000, 990
FROM runs, generate_series(1, $RUNS - 3) g WHERE id = '$BIG';
SQL
printf 'you@example.com\nthe bench passphrase\n' >/dev/null
PASSWORD="the bench passphrase"
echo "$PASSWORD" | $BIN user add you@example.com --role admin --password-stdin >/dev/null
printf 'spool_dir: %s\nconsole:\n  bind: 127.0.0.1:%s\n' "$DATA/spool-console" "$PORT" >"$DATA/console.yaml"
$BIN --config "$DATA/console.yaml" serve 2>"$DATA/console-serve.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$PORT/login"; do sleep 0.1; done
JAR="$DATA/console.jar"
curl -s -c "$JAR" -o /dev/null --data-urlencode "email=you@example.com" --data-urlencode "password=$PASSWORD" "http://127.0.0.1:$PORT/login"
COUNT=$($PG -d bench_console -Atc "SELECT count(*) FROM runs")
# The keyset of the message half-way through the big run, and a quarter through its commonest rule.
MID=$($PG -d bench_console -Atc "SELECT line || ':' || code FROM run_message_view WHERE run_id = '$BIG'
  ORDER BY line, code OFFSET $((MESSAGES / 2)) LIMIT 1")
DEEP=$($PG -d bench_console -Atc "SELECT (extract(epoch FROM started_at) * 1000000)::bigint || '_' || id FROM runs
  ORDER BY started_at DESC, id DESC OFFSET $((RUNS / 2)) LIMIT 1")
WMID=$($PG -d bench_console -Atc "SELECT line || ':' || code FROM run_message_view WHERE run_id = '$WARN'
  ORDER BY line, code OFFSET (SELECT (count(*) / 2)::int FROM run_message_view WHERE run_id = '$WARN') LIMIT 1")
CODE=$($PG -d bench_console -Atc "SELECT code FROM run_messages WHERE run_id = '$BIG' GROUP BY code ORDER BY count(*) DESC LIMIT 1")
CODE_MID=$($PG -d bench_console -Atc "SELECT line || ':' || code FROM run_messages WHERE run_id = '$BIG' AND code = '$CODE'
  ORDER BY line OFFSET (SELECT count(*) / 2 FROM run_messages WHERE run_id = '$BIG' AND code = '$CODE') LIMIT 1")
pages=(
  "/" "/runs" "/runs?cursor=$DEEP" "/runs?tenant=bench&status=failed" "/runs?feed=nightly&since=2026-01-01"
  "/runs/$BIG" "/runs/$BIG?after=$MID" "/runs/$BIG?code=$CODE" "/runs/$BIG?code=$CODE&after=$CODE_MID"
  "/runs/$WARN" "/runs/$WARN?after=$WMID" "/runs/$WARN?code=civility.empty"
  "/runs/$BIG/replay" "/tenants/bench" "/tenants/bench/feeds/nightly" "/tenants/bench/analyser"
  "/tenants/bench/profiles" "/tenants/bench/profiles/nightly" "/admin" "/admin/audit"
)
echo
echo "Console pages: $COUNT runs, runs $BIG (errors) and $WARN (mostly warnings): $STORED messages, $(nproc) cores; median and worst of $REPEAT loads"
printf '%-64s %10s %10s %8s\n' "page" "median ms" "worst ms" "status"
for p in "${pages[@]}"; do
  times=()
  for _ in $(seq "$REPEAT"); do
    out=$(curl -s -b "$JAR" -o /dev/null -w '%{http_code} %{time_total}' "http://127.0.0.1:$PORT$p")
    status=${out% *}
    times+=("${out#* }")
  done
  python3 - "$p" "$status" "${times[@]}" <<'PY'
import statistics, sys
page, status, times = sys.argv[1], sys.argv[2], [float(t) * 1000 for t in sys.argv[3:]]
shown = page if len(page) <= 64 else page[:61] + "..."
print(f"{statistics.median(times):10.1f} {max(times):10.1f} {status:>8}  {shown}")
PY
done | sort -rn | awk '{printf "%-64s %10s %10s %8s\n", $4, $1, $2, $3}'
echo "target: every page under 100 ms"
