#!/usr/bin/env bash
# The archive on S3-compatible object storage (issue 17), against Garage on
# loopback, one run on one machine:
#   1. a 1 GiB file archived by dropfeed (streamed multipart upload, as a poll
#      does) beside `aws s3 cp` of the same file to the same store, then read
#      back with its SHA-256 checked (as a replay does);
#   2. `dropfeed feed run` of a first 1M-row file with the archive on S3
#      against the same with the local file archive, alternated RUNS times.
#   bench/archive.sh                  1 GiB, 1M rows, 3 runs each
#   MIB=256 ROWS=200000 RUNS=1 bench/archive.sh    a quick look
# Needs garage (cargo install garage --locked), aws (pip install awscli),
# PostgreSQL on 127.0.0.1:5432 (trust).
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-1024}
ROWS=${ROWS:-1000000}
RUNS=${RUNS:-3}
PG="psql -h 127.0.0.1 -U postgres -q -v ON_ERROR_STOP=1"
WORK=$(mktemp -d /tmp/dropfeed-archive.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
command -v garage >/dev/null || { echo "garage missing: cargo install garage --locked"; exit 1; }
command -v aws >/dev/null || python3 -m pip install -q awscli
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example gen_contacts --example archive_keep
BIN=target/release/dropfeed
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

# --- Garage: one node, one key, one bucket (as the tests make it) -----------
RPC=$(free_port); S3=$(free_port)
cat > "$WORK/garage.toml" <<TOML
metadata_dir = "$WORK/garage/meta"
data_dir = "$WORK/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC"
rpc_public_addr = "127.0.0.1:$RPC"
rpc_secret = "$(openssl rand -hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3"
root_domain = ".s3.localhost"
TOML
chmod 600 "$WORK/garage.toml"
G="garage -c $WORK/garage.toml"
RUST_LOG=garage=warn $G server >"$WORK/garage.log" 2>&1 &
until $G status >/dev/null 2>&1; do sleep 0.2; done
NODE=$($G status | awk '/^ID/ {getline; print $1; exit}')
$G layout assign -z dc1 -c 10G "$NODE" >/dev/null
$G layout apply --version 1 >/dev/null
KEY_ID=GK$(openssl rand -hex 12); SECRET=$(openssl rand -hex 32)
$G key import --yes -n bench "$KEY_ID" "$SECRET" >/dev/null
$G bucket create archive >/dev/null
$G bucket allow --read --write --owner archive --key bench >/dev/null
echo "$KEY_ID" > "$WORK/key_id"; echo "$SECRET" > "$WORK/secret"
export AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$SECRET AWS_DEFAULT_REGION=garage

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_archive
config() { # file|s3 -> a config file
  local f="$WORK/$1.yaml"
  {
    echo "database_url: $DATABASE_URL"
    echo "spool_dir: $WORK/spool-$1"
    if [ "$1" = s3 ]; then
      cat <<YAML
archive:
  url: s3://archive/nightly
  s3:
    endpoint: http://127.0.0.1:$S3
    region: garage
    access_key_id_file: $WORK/key_id
    secret_access_key_file: $WORK/secret
YAML
    else
      echo "archive:"
      echo "  url: file://$WORK/archive"
    fi
  } > "$f"
  echo "$f"
}
S3_CONFIG=$(config s3)
FILE_CONFIG=$(config file)

# --- 1. one large file -------------------------------------------------------
head -c $((MIB * 1048576)) /dev/urandom > "$WORK/big.bin"
echo "== ${MIB} MiB to Garage on loopback"
for i in 1 2; do
  t0=$(now); aws s3 cp --quiet --endpoint-url "http://127.0.0.1:$S3" "$WORK/big.bin" s3://archive/ref/big.bin; t1=$(now)
  s=$(elapsed "$t0" "$t1")
  echo "aws s3 cp   ${MIB} MiB: $s s ($(python3 -c "print(f'{$MIB / $s:.0f}')") MiB/s)"
  target/release/examples/archive_keep --config "$S3_CONFIG" "$WORK/big.bin" | sed 's/^/dropfeed    /'
done
t0=$(now); aws s3 cp --quiet --endpoint-url "http://127.0.0.1:$S3" s3://archive/ref/big.bin "$WORK/back.bin"; t1=$(now)
s=$(elapsed "$t0" "$t1")
echo "aws s3 cp back ${MIB} MiB (no hash check): $s s ($(python3 -c "print(f'{$MIB / $s:.0f}')") MiB/s)"
rm -f "$WORK/big.bin" "$WORK/back.bin"

# --- 2. a 1M-row feed import, S3 archive against the file archive -----------
CSV="$WORK/contacts_1.csv"
target/release/examples/gen_contacts --rows "$ROWS" --seed 42 --invalid 0.03 --out "$CSV"
head -n 11 examples/contacts.csv > "$WORK/sample.csv"
setup() { # a fresh database with a tenant, a profile, a feed on a drop folder holding the file
  $PG -c "DROP DATABASE IF EXISTS bench_archive" >/dev/null
  $BIN tenant add acme --name Acme >/dev/null
  $BIN import acme "$WORK/sample.csv" --mapping examples/mapping.yaml --dry-run --save-profile nightly >/dev/null
  rm -rf "$WORK/drop"; mkdir -p "$WORK/drop"; cp "$CSV" "$WORK/drop/"
  cat > "$WORK/feed.yaml" <<YAML
tenant: acme
name: nightly
source:
  url: file://$WORK/drop
  pattern: "contacts_*.csv"
schedule:
  cron: "0 30 2 * * *"
  timezone: Europe/Zurich
pickup: { min_age_secs: 0, stable_secs: 0 }
profile: nightly
YAML
  $BIN feed apply "$WORK/feed.yaml" >/dev/null
  $PG -c CHECKPOINT
}
echo "== feed run of a first ${ROWS}-row file ($(du -m "$CSV" | cut -f1) MB), the archive local or on S3"
declare -A total=([file]=0 [s3]=0)
for run in $(seq 1 "$RUNS"); do
  for kind in file s3; do
    setup
    cfg=$FILE_CONFIG; [ "$kind" = s3 ] && cfg=$S3_CONFIG
    t0=$(now); $BIN --config "$cfg" feed run acme/nightly >/dev/null 2>&1; t1=$(now)
    s=$(elapsed "$t0" "$t1")
    total[$kind]=$(python3 -c "print(${total[$kind]} + $s)")
    echo "run $run  archive $kind: $s s"
  done
done
python3 - "${total[file]}" "${total[s3]}" "$RUNS" <<'PY'
import sys
f, s, n = float(sys.argv[1]) / int(sys.argv[3]), float(sys.argv[2]) / int(sys.argv[3]), int(sys.argv[3])
print(f"mean of {n}: file archive {f:.2f} s, S3 archive {s:.2f} s: +{s - f:.2f} s ({s / f:.2f}x)")
PY
$PG -c "DROP DATABASE IF EXISTS bench_archive" >/dev/null
