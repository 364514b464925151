#!/usr/bin/env bash
# Is the import linear in rows? The first import of ROWS and of BIG rows
# (bench/run.sh's files), each on a fresh database after a CHECKPOINT,
# alternated ROUNDS times; prints the times and BIG's time against
# BIG/ROWS times ROWS's (issue 18: within 10%).
#   bench/linear.sh            1M against 5M rows, 2 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
BIG=${BIG:-5000000}
ROUNDS=${ROUNDS:-2}
SEED=${SEED:-42}
INVALID=${INVALID:-0.03}
PG="psql -h 127.0.0.1 -U postgres -q -v ON_ERROR_STOP=1"
DATA=$(realpath "${DATA:-bench/data}")
mkdir -p "$DATA"
[ -n "${BIN:-}" ] || { cargo build --release --locked --quiet; BIN=target/release/dropfeed; }
# shellcheck source=bench/reference.sh
. bench/reference.sh
SMALL="$DATA/a-rs-$ROWS-$SEED-$INVALID.csv"
LARGE="$DATA/big-rs-$BIG-$SEED-$INVALID.csv"
gen "$SMALL" --rows "$ROWS" --seed "$SEED" --invalid "$INVALID"
gen "$LARGE" --rows "$BIG" --seed "$SEED" --invalid "$INVALID"
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_linear
timed() {
  $PG -c "DROP DATABASE IF EXISTS bench_linear"
  "$BIN" migrate >/dev/null
  "$BIN" tenant add bench --name Bench >/dev/null
  checkpoint
  local t0 t1
  t0=$(now)
  "$BIN" import bench "$1" --mapping examples/mapping.yaml --list nightly >/dev/null
  t1=$(now)
  elapsed "$t0" "$t1"
}
small=(); large=()
for _ in $(seq 1 "$ROUNDS"); do
  small+=("$(timed "$SMALL")"); large+=("$(timed "$LARGE")")
  echo "$ROWS rows: ${small[-1]} s   $BIG rows: ${large[-1]} s"
done
python3 - "$ROWS" "$BIG" "${small[*]}" "${large[*]}" <<'PY'
import sys, statistics
rows, big = int(sys.argv[1]), int(sys.argv[2])
s = statistics.mean(map(float, sys.argv[3].split()))
l = statistics.mean(map(float, sys.argv[4].split()))
print(f"mean {rows:,} rows: {s:.2f} s; {big:,} rows: {l:.2f} s = {l / (s * big / rows):.2f}x of {big // rows} x the smaller import")
PY
