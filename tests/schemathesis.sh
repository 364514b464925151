#!/usr/bin/env bash
# Fuzzes the API with Schemathesis against its own OpenAPI document: a real
# server (`dropfeed serve`) on a fresh database holding real data (two
# tenants, imports with rejected lines, a saved profile, a feed and its
# runs), once per role (admin, support, a tenant), with the checks for
# server errors, status codes, content types, response schemas and headers.
#
#   bash tests/schemathesis.sh                 # what CI runs (seed 1, 50 examples)
#   ST_EXAMPLES=200 ST_SEED=7 bash tests/schemathesis.sh
#
# Needs: a built `target/debug/dropfeed` (or DROPFEED=path), PostgreSQL on
# 127.0.0.1:5432, and `st` (pip install schemathesis==$ST_VERSION).
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
EXAMPLES=${ST_EXAMPLES:-50}
SEED=${ST_SEED:-1}
BIN=${DROPFEED:-target/debug/dropfeed}
DB=dropfeed_schemathesis
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB

python3 -c "import importlib.metadata as m; assert m.version('schemathesis') == '$ST_VERSION'" 2>/dev/null \
  || python3 -m pip install -q "schemathesis==$ST_VERSION"
# The pinned one, beside the python3 that has it (not another `st` on PATH).
ST="$(python3 -c 'import os, sys; print(os.path.dirname(sys.executable))')/st"
[ -x "$ST" ] || ST=st
[ -x "$BIN" ] || cargo build --locked
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/spool" "$work/outbox" "$work/feeds"
cat >"$work/config.yaml" <<EOF
database_url: $DATABASE_URL
spool_dir: $work/spool
console:
  bind: 127.0.0.1:$port
EOF
dfd() { "$BIN" --config "$work/config.yaml" "$@"; }

# The data the operations read: tenants, runs with messages and rejects, a
# profile in two versions, a feed with a feed run (archived file) and a dry run.
dfd tenant add acme --name "Acme SA" --language fr --timezone Europe/Zurich >/dev/null
dfd tenant add globex --name "Globex" --language en >/dev/null
dfd import acme examples/contacts.csv --mapping examples/mapping.yaml --save-profile nightly >/dev/null || true
dfd import acme examples/contacts.csv --mapping examples/mapping.yaml --list members --save-profile nightly >/dev/null || true
dfd import globex examples/contacts.csv --mapping examples/mapping.yaml --dry-run --save-profile nightly >/dev/null || true
cp examples/contacts.csv "$work/outbox/contacts_20261207.csv"
cat >"$work/feeds/acme.yaml" <<EOF
tenant: acme
name: nightly
source:
  url: file://$work/outbox
  pattern: "contacts_*.csv"
schedule:
  cron: "0 2 * * *"
pickup:
  min_age_secs: 0
  stable_secs: 0
after_success: { move_to: processed }
after_failure: { move_to: failed }
profile: nightly
EOF
dfd feed apply "$work/feeds/acme.yaml" >/dev/null
dfd feed run acme/nightly >/dev/null || true

runs=$(psql -h 127.0.0.1 -U postgres -d $DB -Atc "SELECT count(*) FROM runs")
[ "$runs" -ge 4 ] || { echo "the data was not made: $runs runs"; exit 1; }

# The identifiers that exist, drawn most of the time (the rest is generated):
# without them nearly every operation would only meet its 404.
quoted() { psql -h 127.0.0.1 -U postgres -d $DB -Atc "$1" | sed 's/.*/"&"/' | paste -sd, -; }
cat >"$work/schemathesis.toml" <<EOF
[dictionaries.tenants]
values = ["acme", "globex"]
[dictionaries.feeds]
values = ["nightly"]
[dictionaries.profiles]
values = ["nightly"]
[dictionaries.runs]
values = [$(quoted "SELECT id FROM runs ORDER BY started_at")]
[dictionaries.codes]
values = [$(quoted "SELECT DISTINCT code FROM run_messages")]
[parameters]
"path.tenant" = { dictionary = "tenants", probability = 0.7 }
"query.tenant" = { dictionary = "tenants", probability = 0.5 }
"path.feed" = { dictionary = "feeds", probability = 0.7 }
"query.feed" = { dictionary = "feeds", probability = 0.5 }
"path.profile" = { dictionary = "profiles", probability = 0.7 }
"query.profile" = { dictionary = "profiles", probability = 0.5 }
"path.run" = { dictionary = "runs", probability = 0.8 }
"query.code" = { dictionary = "codes", probability = 0.5 }
EOF

token() { dfd --format json token create --name "st-$1" "${@:2}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
admin=$(token admin --role admin)
support=$(token support --role support)
tenant=$(token tenant --role tenant --tenant acme)

dfd serve >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/api/v1/openapi.json')" 2>/dev/null && break
  sleep 0.1
done

status=0
reports="$PWD/target/schemathesis"
for role in admin support tenant; do
  echo "== schemathesis as $role (seed $SEED, at most $EXAMPLES examples per operation)"
  # From the work folder, where Schemathesis leaves its cache.
  (cd "$work" && "$ST" --config-file "$work/schemathesis.toml" run "http://127.0.0.1:$port/api/v1/openapi.json" \
    --header "Authorization: Bearer ${!role}" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --seed "$SEED" --max-examples "$EXAMPLES" --workers 2 --request-timeout 30 \
    --phases examples,coverage,fuzzing \
    --suppress-health-check all \
    --report junit --report-dir "$reports/$role") || status=1
done
# An error the server logged is a failure too, even behind a 200 (a
# streamed answer that broke off after its headers).
if grep -q "ERROR" "$work/serve.log"; then
  echo "== the server logged errors"
  status=1
fi
if [ $status -ne 0 ]; then
  echo "== the server's log"
  grep -E "ERROR|WARN" "$work/serve.log" | tail -40 || true
fi
exit $status
