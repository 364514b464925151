#!/usr/bin/env bash
# The import's time beside the psql reference, alternated: each round runs
# the reference, then every dropfeed binary given, on fresh databases and
# the same files: a first import (ROWS rows) and a second file that overlaps
# it by half. Alternating spreads the machine's drift over all of them, so
# two builds (before/after a change) or dropfeed and the reference compare
# within one run. Prints each round and the means.
#   bench/alternate.sh                          target/release/dropfeed
#   bench/alternate.sh OLD_BIN NEW_BIN          two builds side by side
#   ROUNDS=5 ROWS=1000000 bench/alternate.sh
# Needs PostgreSQL on 127.0.0.1:5432 (trust). The files are bench/run.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-3}
SEED=${SEED:-42}
INVALID=${INVALID:-0.03}
PG="psql -h 127.0.0.1 -U postgres -q -v ON_ERROR_STOP=1"
DATA=$(realpath "${DATA:-bench/data}")
mkdir -p "$DATA"
BINS=("$@")
if [ ${#BINS[@]} -eq 0 ]; then
  cargo build --release --locked --quiet
  BINS=(target/release/dropfeed)
fi
# shellcheck source=bench/reference.sh
. bench/reference.sh
A="$DATA/a-rs-$ROWS-$SEED-$INVALID.csv"
B="$DATA/b-rs-$ROWS-$SEED-$INVALID.csv"
gen "$A" --rows "$ROWS" --seed "$SEED" --invalid "$INVALID"
gen "$B" --rows "$ROWS" --start $((ROWS / 2)) --seed $((SEED + 1)) --invalid "$INVALID"

timed() { local t0 t1; checkpoint; t0=$(now); "$@" >/dev/null; t1=$(now); elapsed "$t0" "$t1"; }
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_alternate
: >"$DATA/alternate"
for round in $(seq 1 "$ROUNDS"); do
  ref_setup >/dev/null
  echo "reference first $(timed ref_import "$A")" >>"$DATA/alternate"
  echo "reference second $(timed ref_import "$B")" >>"$DATA/alternate"
  for i in "${!BINS[@]}"; do
    bin=${BINS[$i]}
    $PG -c "DROP DATABASE IF EXISTS bench_alternate"
    "$bin" migrate >/dev/null
    "$bin" tenant add bench --name Bench >/dev/null
    for step in first second; do
      file=$A; [ $step = second ] && file=$B
      echo "bin$i $step $(timed "$bin" import bench "$file" --mapping examples/mapping.yaml --list nightly)" >>"$DATA/alternate"
    done
  done
  echo "round $round:"; tail -n $((2 + 2 * ${#BINS[@]})) "$DATA/alternate" | sed 's/^/  /'
done

python3 - "$DATA/alternate" "${BINS[@]}" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
bins = sys.argv[2:]
def of(who, step):
    return [float(t) for w, s, t in rows if w == who and s == step]
ref = {s: statistics.mean(of("reference", s)) for s in ("first", "second")}
print(f"\n{'':34} {'first import':>24} {'second (overlapping)':>24}")
label = "psql \\copy + upsert (reference)"
print(f"{label:34} {ref['first']:>22.2f} s {ref['second']:>22.2f} s")
for i, b in enumerate(bins):
    cells = []
    for s in ("first", "second"):
        ts = of(f"bin{i}", s)
        m = statistics.mean(ts)
        cells.append(f"{m:.2f} s ({m / ref[s]:.2f}x)")
    print(f"{b[-34:]:34} {cells[0]:>24} {cells[1]:>24}")
print("means of", len(of("reference", "first")), "rounds; each round's figures are above")
PY
