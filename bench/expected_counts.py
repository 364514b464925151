#!/usr/bin/env python3
"""Replays gen_contacts.py's random choices and prints, as JSON, how many rows
it broke per rule code (the counts dropfeed must report for such a file, with
examples/mapping.yaml). Same arguments as gen_contacts.py (--rows, --start,
--invalid, --seed); the file itself is not written."""
import argparse, json, os, random, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_contacts as g

CODES = ["email.format", "name.digits", "civility.unknown", "birthdate.format",
         "country.unknown", "address.partial", "consent.value", "language.unknown"]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--invalid", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    counts = {}
    warn = {"civility.empty": 0, "language.empty": 0, "display.empty": 0}
    for i in range(a.start, a.start + a.rows):
        r = g.row(i, rng)
        if rng.random() < a.invalid:
            state = rng.getstate()
            k = random.Random().randrange(1)  # placeholder, replaced below
            rng.setstate(state)
            k = rng.randrange(8)
            rng.setstate(state)
            g.break_row(r, rng)
            counts[CODES[k]] = counts.get(CODES[k], 0) + 1
        else:
            if r[3] == "": warn["civility.empty"] += 1
            if r[1] == "": warn["language.empty"] += 1
            if r[2] == "": warn["display.empty"] += 1
    print(json.dumps({"rejected": counts, "rejected_total": sum(counts.values()),
                      "warnings_by_code": warn}, sort_keys=True))

if __name__ == "__main__":
    main()
