#!/usr/bin/env bash
# API benchmark (issue 15): `dropfeed serve` beside the references a user
# would otherwise reach for, in one run on one machine:
#   1. upload throughput: curl streaming a file to /api/v1/.../imports,
#      against curl streaming it to nginx (WebDAV PUT, a plain file server);
#   2. a whole upload import of ROWS rows: wall time and the server's peak
#      RSS, beside `dropfeed import` of the same file (the CLI);
#   3. GET /api/v1/runs with RUNS runs in the table: requests per second with
#      ab (keep-alive, 8 clients), beside pgbench running the page's own SQL
#      (the database's ceiling): first page, a deep page by cursor, a filter.
#   bench/api.sh                      1M rows, 100,000 runs
#   ROWS=200000 RUNS=20000 bench/api.sh   a quick look
# Needs PostgreSQL on 127.0.0.1:5432 (trust), /usr/bin/time; installs nginx
# and ab (apache2-utils) with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
RUNS=${RUNS:-100000}
PORT=${PORT:-18480}
NGINX_PORT=${NGINX_PORT:-18481}
PG="psql -h 127.0.0.1 -U postgres -q -v ON_ERROR_STOP=1"
DATA=${DATA:-bench/data}
mkdir -p "$DATA"
DATA=$(realpath "$DATA")
PGBENCH=$(ls /usr/lib/postgresql/*/bin/pgbench | tail -n1)

missing=()
command -v nginx >/dev/null || missing+=(nginx-core)
command -v ab >/dev/null || missing+=(apache2-utils)
command -v curl >/dev/null || missing+=(curl)
[ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example gen_contacts
BIN=$(realpath target/release/dropfeed)
A="$DATA/a-rs-$ROWS-42-0.03.csv"
[ -s "$A" ] || target/release/examples/gen_contacts --rows "$ROWS" --seed 42 --invalid 0.03 --out "$A"
SIZE=$(stat -c %s "$A")
now() { date +%s.%N; }
mbps() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e6 / (float(sys.argv[3]) - float(sys.argv[2])):.0f}')" "$@"; }
took() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$@"; }

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_api
$PG -c "DROP DATABASE IF EXISTS bench_api" -c "CREATE DATABASE bench_api"
$BIN migrate >/dev/null
$BIN tenant add bench --name Bench >/dev/null
head -n 2 "$A" >"$DATA/sample.csv"
$BIN import bench "$DATA/sample.csv" --mapping examples/mapping.yaml --list nightly --dry-run --save-profile nightly >/dev/null
TOKEN=$($BIN token create --name bench --role support --format json | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
AUTH="Authorization: Bearer $TOKEN"
CONFIG="$DATA/api.yaml"
printf 'spool_dir: %s\nconsole:\n  bind: 127.0.0.1:%s\n' "$DATA/spool-api" "$PORT" >"$CONFIG"
SERVER=""
start_server() {
  $BIN --config "$CONFIG" serve 2>"$DATA/serve.log" &
  SERVER=$!
  until curl -s -o /dev/null "http://127.0.0.1:$PORT/api/v1/openapi.json"; do sleep 0.1; done
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }
peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# --- 1. upload throughput -----------------------------------------------------
mkdir -p "$DATA/nginx/root" "$DATA/nginx/tmp" "$DATA/nginx/logs"
cat >"$DATA/nginx/nginx.conf" <<NGINX
daemon on;
# Its workers write where this script's user does (ignored when not root).
user $(id -un) $(id -gn);
pid $DATA/nginx/nginx.pid;
error_log $DATA/nginx/logs/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $DATA/nginx/tmp;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { root $DATA/nginx/root; dav_methods PUT; client_max_body_size 0; }
  }
}
NGINX
nginx -c "$DATA/nginx/nginx.conf" -p "$DATA/nginx"
trap 'nginx -c "$DATA/nginx/nginx.conf" -p "$DATA/nginx" -s stop 2>/dev/null || true; [ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true' EXIT
start_server
sync
best_ref=0; best_api=0
for i in 1 2 3; do
  t0=$(now); curl -sS -f -T "$A" -o /dev/null "http://127.0.0.1:$NGINX_PORT/upload-$i.csv"; t1=$(now)
  r=$(mbps "$SIZE" "$t0" "$t1"); [ "$r" -gt "$best_ref" ] && best_ref=$r
  rm -f "$DATA/nginx/root/upload-$i.csv"
  # An unknown profile is refused once the file is spooled: the upload alone.
  t0=$(now)
  code=$(curl -sS -T "$A" -X POST -H "$AUTH" -H 'Content-Type: text/csv' -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:$PORT/api/v1/tenants/bench/imports?profile=no-such-profile")
  t1=$(now)
  [ "$code" = 404 ] || { echo "upload answered $code"; exit 1; }
  r=$(mbps "$SIZE" "$t0" "$t1"); [ "$r" -gt "$best_api" ] && best_api=$r
done
UPLOAD_PEAK=$(peak_kb "$SERVER")
stop_server

# --- 2. a whole upload import, and its peak RSS --------------------------------
start_server
BASE=$(peak_kb "$SERVER")
t0=$(now)
curl -sS -f -T "$A" -X POST -H "$AUTH" -H 'Content-Type: text/csv' -o "$DATA/api-report.json" \
  "http://127.0.0.1:$PORT/api/v1/tenants/bench/imports?profile=nightly"
t1=$(now)
IMPORT_API=$(took "$t0" "$t1")
IMPORT_PEAK=$(peak_kb "$SERVER")
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print("  api import:", r["status"], r["counts"])' "$DATA/api-report.json"
stop_server
$PG -c "DROP DATABASE IF EXISTS bench_api_cli" -c "CREATE DATABASE bench_api_cli"
DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_api_cli $BIN migrate >/dev/null
DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_api_cli $BIN tenant add bench --name Bench >/dev/null
t0=$(now)
DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_api_cli /usr/bin/time -f %M -o "$DATA/cli.rss" \
  $BIN import bench "$A" --mapping examples/mapping.yaml --list nightly >/dev/null
t1=$(now)
IMPORT_CLI=$(took "$t0" "$t1")
CLI_PEAK=$(cat "$DATA/cli.rss")
$PG -c "DROP DATABASE bench_api_cli"

# --- 3. GET /api/v1/runs with RUNS runs ----------------------------------------
# Copies of the import's run, one a minute back in time; every tenth failed.
$PG -d bench_api <<SQL
INSERT INTO runs (id, tenant_id, feed, status, file_name, file_size, file_sha256, started_at, finished_at, rows, inserted)
SELECT gen_random_uuid(), tenant_id, CASE WHEN g % 2 = 0 THEN 'nightly' END,
       CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'succeeded' END, 'contacts_' || g || '.csv', file_size, file_sha256,
       started_at - g * interval '1 minute', started_at - g * interval '1 minute' + interval '20 seconds', rows, inserted
FROM runs, generate_series(1, $RUNS - 1) g WHERE status <> 'dry_run';
SQL
COUNT=$($PG -d bench_api -Atc "SELECT count(*) FROM runs")
start_server
# The cursor of a page half-way down the table.
DEEP=$($PG -d bench_api -Atc "SELECT (extract(epoch FROM started_at) * 1000000)::bigint || '_' || id FROM runs
  ORDER BY started_at DESC, id DESC OFFSET $((RUNS / 2)) LIMIT 1")
TENANT_ID=$($PG -d bench_api -Atc "SELECT id FROM tenants WHERE slug = 'bench'")
ab_rps() { ab -q -k -c 8 -n "${REQUESTS:-20000}" -H "$AUTH" "$1" 2>/dev/null | awk '/Requests per second/ {print int($4)}'; }
# pgbench runs the page's SQL (src/store/runs.rs, runs::page) with the same
# parameters: what the database alone serves, 8 clients.
pg_tps() {
  printf '%s\n' "$1" >"$DATA/page.sql"
  $PGBENCH -h 127.0.0.1 -U postgres -n -M prepared -c 8 -j 2 -T 10 -f "$DATA/page.sql" bench_api 2>/dev/null \
    | awk '/^tps/ {print int($3)}'
}
PAGE_SQL="SELECT r.id, t.slug, r.feed, r.status, r.file_name, r.started_at, r.rows, r.inserted, r.updated, r.rejected
 FROM runs r JOIN tenants t ON t.id = r.tenant_id
 WHERE (%s) ORDER BY r.started_at DESC, r.id DESC LIMIT 50;"
deep_micros=${DEEP%%_*}; deep_id=${DEEP#*_}
deep_where="(r.started_at, r.id) < (to_timestamp($deep_micros / 1000000.0), '$deep_id')"
declare -A RPS PGTPS
for pass in nostats analysed; do
  if [ $pass = analysed ]; then $PG -d bench_api -c "ANALYZE runs"; fi
  RPS[first_$pass]=$(ab_rps "http://127.0.0.1:$PORT/api/v1/runs")
  RPS[deep_$pass]=$(ab_rps "http://127.0.0.1:$PORT/api/v1/runs?cursor=$DEEP")
  RPS[failed_$pass]=$(ab_rps "http://127.0.0.1:$PORT/api/v1/runs?tenant=bench&status=failed")
  PGTPS[first_$pass]=$(pg_tps "$(printf "$PAGE_SQL" "true")")
  PGTPS[deep_$pass]=$(pg_tps "$(printf "$PAGE_SQL" "$deep_where")")
  PGTPS[failed_$pass]=$(pg_tps "$(printf "$PAGE_SQL" "r.tenant_id = $TENANT_ID AND r.status = 'failed'")")
done
stop_server

echo
echo "API benchmark: $ROWS rows ($((SIZE / 1000000)) MB), $COUNT runs in the table, $(nproc) cores"
printf '%-52s %14s %16s\n' "measure" "dropfeed" "reference"
printf '%-52s %11s MB/s %11s MB/s\n' "upload (curl -T, best of 3)" "$best_api" "$best_ref"
printf '%-52s %13s s %14s s\n' "import of the file: upload (API) vs dropfeed import" "$IMPORT_API" "$IMPORT_CLI"
printf '%-52s %11s MiB %13s MiB\n' "peak RSS: serve during upload only" "$((UPLOAD_PEAK / 1024))" "-"
printf '%-52s %11s MiB %13s MiB\n' "peak RSS: serve during the import vs the CLI's" "$((IMPORT_PEAK / 1024))" "$((CLI_PEAK / 1024))"
printf '%-52s %11s MiB\n' "  (serve at start)" "$((BASE / 1024))"
for pass in nostats analysed; do
  for q in first deep failed; do
    printf '%-52s %10s req/s %10s tps\n' "GET /runs, $q page ($pass) vs pgbench of its SQL" "${RPS[${q}_$pass]}" "${PGTPS[${q}_$pass]}"
  done
done
