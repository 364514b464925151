#!/usr/bin/env bash
# Unauthenticated memory (issue 27): LOGINS logins at once, each with a
# random e-mail address, from its own client, and a wrong password, against `dropfeed serve`; prints the
# server's resident memory before and at its peak, beside the security
# review's figure for the same load before the password gate (20 MB, then
# 1.9 GB: argon2 in up to 512 blocking threads), and what the logins got.
#   bench/logins.sh                 (LOGINS=100, the release build)
#   BIN=target/debug/dropfeed LOGINS=500 bench/logins.sh
# Needs PostgreSQL on 127.0.0.1:5432 (trust).
set -euo pipefail
cd "$(dirname "$0")/.."
LOGINS=${LOGINS:-100}
BIN=${BIN:-target/release/dropfeed}
[ -x "$BIN" ] || cargo build --release --locked --quiet
DB=dropfeed_bench_logins
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Each login from its own client address (behind a trusted proxy): the
# worst case, where no address is throttled and every login is hashed.
printf 'spool_dir: %s\nconsole:\n  bind: 127.0.0.1:%s\n  trusted_proxies: [127.0.0.1]\n' "$work" "$port" >"$work/config.yaml"
"$BIN" --config "$work/config.yaml" migrate >/dev/null
"$BIN" --config "$work/config.yaml" serve >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/api/v1/openapi.json')" 2>/dev/null && break
  sleep 0.1
done
rss() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$server/status"; }
hwm() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$server/status"; }
before=$(rss)
statuses=$(python3 - "$port" "$LOGINS" <<'PY'
import collections, json, random, sys, threading, urllib.request, urllib.error
port, n = sys.argv[1], int(sys.argv[2])
got = collections.Counter()
def login(i):
    body = json.dumps({"email": f"u{random.getrandbits(64)}@example.com", "password": "wrong password"}).encode()
    client = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
    headers = {"content-type": "application/json", "x-forwarded-for": client}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/session", body, headers)
    try:
        urllib.request.urlopen(req, timeout=60)
        got[200] += 1
    except urllib.error.HTTPError as e:
        got[e.code] += 1
threads = [threading.Thread(target=login, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(" ".join(f"{k}:{v}" for k, v in sorted(got.items())))
PY
)
peak=$(hwm)
printf '%-40s %12s %12s\n' "$LOGINS logins at once" "dropfeed" "review (old)"
printf '%-40s %9s MiB %9s MB\n' "resident before" "$before" "20"
printf '%-40s %9s MiB %9s GB\n' "resident at peak" "$peak" "1.9"
printf '%-40s %s\n' "answers (status:count)" "$statuses"
