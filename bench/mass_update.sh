#!/usr/bin/env bash
# Mass-update benchmark (seed 001): ROWS contacts imported with
# examples/mapping.yaml, exported with `contacts export --old-new criteria`,
# SHARE of the [new] cells changed to another valid code, imported back with
# `--kind mass_update`. Prints the seconds of the export, the dry run and the
# import (see README, "Performance").
#   bench/mass_update.sh                   200,000 contacts, 10% of the cells
#   ROWS=20000 SHARE=0.5 bench/mass_update.sh
# Needs PostgreSQL on 127.0.0.1:5432 (trust) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-200000}
SHARE=${SHARE:-0.10}
PG="psql -h 127.0.0.1 -U postgres -q -v ON_ERROR_STOP=1"
DATA=${DATA:-bench/data}
mkdir -p "$DATA"
DATA=$(realpath "$DATA")
BIN=${BIN:-target/release/dropfeed}
[ -x "$BIN" ] || cargo build --release --locked --quiet
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_mass_update

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

# Made by the gen_contacts example (bench/gen/contacts.rs); "rs" in the name
# keeps a file of the former Python generator from being taken for it.
CONTACTS="$DATA/mu-contacts-rs-$ROWS.csv"
if [ ! -s "$CONTACTS" ]; then
  cargo build --release --locked --quiet --example gen_contacts
  target/release/examples/gen_contacts --rows "$ROWS" --invalid 0 --out "$CONTACTS"
fi
$PG -c "DROP DATABASE IF EXISTS bench_mass_update"
"$BIN" migrate >/dev/null
"$BIN" tenant add bench --name Bench >/dev/null
"$BIN" import bench "$CONTACTS" --mapping examples/mapping.yaml --save-profile nightly >/dev/null

t0=$(now)
"$BIN" contacts export bench --old-new criteria -o "$DATA/mu-export.csv"
t1=$(now)
# Changes SHARE of the [new] cells (a deterministic draw) to another code
# of the criterion, as a customer editing the file would.
python3 - "$DATA/mu-export.csv" "$DATA/mu-edited.csv" "$SHARE" <<'PY'
import random, sys
codes = {"segment": ["SEG_GOLD", "SEG_SILVER", "SEG_BRONZE"],
         "interest": ["INT_OPERA", "INT_JAZZ", "INT_THEATRE", "INT_SPORT"]}
rng = random.Random(1)
src, dst, share = sys.argv[1], sys.argv[2], float(sys.argv[3])
changed = cells = 0
with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
    header = f.readline().rstrip("\n").split(";")
    out.write(";".join(header) + "\n")
    new = [(i, h.split(".", 1)[1]) for i, h in enumerate(header) if h.startswith("[new] criteria.")]
    for line in f:
        cells_of = line.rstrip("\n").split(";")
        for i, key in new:
            cells += 1
            if rng.random() < share:
                cells_of[i] = rng.choice([c for c in codes[key] if c != cells_of[i]])
                changed += 1
        out.write(";".join(cells_of) + "\n")
print(f"{changed} of {cells} [new] cells changed", file=sys.stderr)
PY
t2=$(now)
"$BIN" import bench "$DATA/mu-edited.csv" --kind mass_update --dry-run >/dev/null
t3=$(now)
"$BIN" --format json import bench "$DATA/mu-edited.csv" --kind mass_update > "$DATA/mu-report.json"
t4=$(now)
python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['counts']; print('counts', {k: c[k] for k in ('rows','updated','unchanged','rejected','conflicts')})" "$DATA/mu-report.json"
echo "export --old-new criteria, $ROWS contacts: $(elapsed "$t0" "$t1") s"
echo "mass update dry run: $(elapsed "$t2" "$t3") s"
echo "mass update import: $(elapsed "$t3" "$t4") s"
