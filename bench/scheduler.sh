#!/usr/bin/env bash
# Scheduler scale (issue 6, part 5): FEEDS feeds on file:// folders, the
# daemon idle between runs (CPU share and memory over IDLE_SECS), and the
# cost of a scheduler tick with few and with many registered feeds, then
# with due feeds. Prints a table. Needs PostgreSQL on 127.0.0.1:5432.
#   bench/scheduler.sh                 10,000 feeds, 60 s idle
#   FEEDS=2000 IDLE_SECS=20 bench/scheduler.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FEEDS=${FEEDS:-10000}
SMALL=${SMALL:-100}
IDLE_SECS=${IDLE_SECS:-60}
DUE=${DUE:-1000}
PORT=${PORT:-19187}
WORK=$(mktemp -d /tmp/dropfeed-sched.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PG="psql -h 127.0.0.1 -U postgres -q -v ON_ERROR_STOP=1"
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_sched
[ -n "${BIN:-}" ] || { cargo build --release --locked --quiet; BIN=target/release/dropfeed; }
HZ=$(getconf CLK_TCK)

# Feeds of SMALL, then FEEDS, tenants of 100 feeds each, each on its own
# empty file:// folder, all due at 03:00 Zurich time (not during the bench),
# each expecting a file by 00:01 with a missing-file alert: the daemon's
# first check queues one alert per feed, the later ones must find nothing
# to do without going through every feed.
make_feeds() { # count
  rm -rf "$WORK/feeds"; mkdir -p "$WORK/feeds" "$WORK/drop"
  python3 - "$1" "$WORK" <<'PY'
import os, sys
n, work = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    d = f"{work}/drop/f{i}"
    os.makedirs(d, exist_ok=True)
    with open(f"{work}/feeds/f{i}.yaml", "w") as f:
        f.write(f"""tenant: t{i // 100}
name: nightly-{i}
source:
  url: file://{d}
  pattern: "contacts_*.csv"
schedule:
  cron: "0 3 * * *"
  timezone: Europe/Zurich
expect_file_by: "00:01"
report: {{ to: [ops@example.com], on: [missing] }}
after_success: {{ move_to: processed }}
profile: nightly
""")
PY
}

setup() { # feeds
  $PG -c "DROP DATABASE IF EXISTS bench_sched" >/dev/null
  head -n 11 examples/contacts.csv > "$WORK/sample.csv"
  for t in $(seq 0 $(( ($1 - 1) / 100 ))); do
    $BIN tenant add "t$t" --name "Tenant $t" >/dev/null
    $BIN import "t$t" "$WORK/sample.csv" --mapping examples/mapping.yaml --dry-run --save-profile nightly >/dev/null
  done
  make_feeds "$1"
  local t0 t1
  t0=$(date +%s.%N)
  find "$WORK/feeds" -name '*.yaml' -print0 | xargs -0 "$BIN" feed apply >/dev/null
  t1=$(date +%s.%N)
  APPLY_SECS=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
  cat > "$WORK/config.yaml" <<YAML
database_url: $DATABASE_URL
spool_dir: $WORK/spool
workers: 4
http:
  bind: 127.0.0.1:$PORT
scheduler:
  tick_ms: 1000
YAML
}

metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}' | tail -n1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

# Starts the daemon, lets it settle, then measures IDLE_SECS of idling.
# Sets IDLE_CPU (% of one core), RSS_MIB, TICK_MS (mean tick).
measure_idle() {
  "$BIN" run --config "$WORK/config.yaml" >"$WORK/daemon.log" 2>&1 &
  DPID=$!
  for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 1; done
  sleep 45 # the first missing-file check (one alert per feed) and backlog refresh run in here
  local c0 c1 s0 s1 n0 n1
  c0=$(cpu_ticks $DPID); s0=$(metric dropfeed_scheduler_tick_seconds_sum); n0=$(metric dropfeed_scheduler_tick_seconds_count)
  sleep "$IDLE_SECS"
  c1=$(cpu_ticks $DPID); s1=$(metric dropfeed_scheduler_tick_seconds_sum); n1=$(metric dropfeed_scheduler_tick_seconds_count)
  IDLE_CPU=$(python3 -c "print(f'{100 * ($c1 - $c0) / $HZ / $IDLE_SECS:.2f}')")
  RSS_MIB=$(python3 -c "print(f'{$(rss_kib $DPID) / 1024:.1f}')")
  HWM_MIB=$(python3 -c "print(f'{$(hwm_kib $DPID) / 1024:.1f}')")
  TICK_MS=$(python3 -c "print(f'{1000 * ($s1 - $s0) / max(1, $n1 - $n0):.2f}')")
}

# With the daemon still up: DUE feeds made due at once; mean tick while it
# works through them (each poll lists an empty folder) and how long it took.
measure_due() {
  local s0 n0 c0 t0 s1 n1 t1 left
  s0=$(metric dropfeed_scheduler_tick_seconds_sum); n0=$(metric dropfeed_scheduler_tick_seconds_count)
  c0=$(metric dropfeed_scheduler_claimed_total); c0=${c0:-0}
  t0=$(date +%s.%N)
  $PG -d bench_sched -c "UPDATE feeds SET next_run_at = now() - interval '1 second' WHERE id IN (SELECT id FROM feeds ORDER BY random() LIMIT $DUE)"
  for _ in $(seq 1 600); do
    left=$($PG -d bench_sched -Atc "SELECT count(*) FROM feeds WHERE next_run_at <= now() OR lease_owner IS NOT NULL")
    [ "$left" -eq 0 ] && break
    sleep 0.5
  done
  t1=$(date +%s.%N)
  s1=$(metric dropfeed_scheduler_tick_seconds_sum); n1=$(metric dropfeed_scheduler_tick_seconds_count)
  DUE_TICK_MS=$(python3 -c "print(f'{1000 * ($s1 - $s0) / max(1, $n1 - $n0):.2f}')")
  DUE_SECS=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
  DUE_CLAIMED=$(( $(metric dropfeed_scheduler_claimed_total) - c0 ))
}

setup "$SMALL"; SMALL_APPLY=$APPLY_SECS
measure_idle; SMALL_CPU=$IDLE_CPU; SMALL_RSS=$RSS_MIB; SMALL_TICK=$TICK_MS
SMALL_ALERTS=$($PG -d bench_sched -Atc "SELECT count(*) FROM notifications WHERE code = 'file.missing'")
kill -TERM $DPID; wait $DPID || true

setup "$FEEDS"; BIG_APPLY=$APPLY_SECS
measure_idle; BIG_CPU=$IDLE_CPU; BIG_RSS=$RSS_MIB; BIG_HWM=$HWM_MIB; BIG_TICK=$TICK_MS
BIG_ALERTS=$($PG -d bench_sched -Atc "SELECT count(*) FROM notifications WHERE code = 'file.missing'")
measure_due
kill -TERM $DPID; wait $DPID || true

echo
printf '%-52s %12s %12s %10s\n' "measure" "$SMALL feeds" "$FEEDS feeds" "target"
printf '%-52s %11ss %11ss\n' "feed apply of all the YAML files" "$SMALL_APPLY" "$BIG_APPLY"
printf '%-52s %11s%% %11s%% %10s\n' "idle daemon CPU (share of one core, ${IDLE_SECS} s)" "$SMALL_CPU" "$BIG_CPU" "< 1%"
printf '%-52s %8s MiB %8s MiB %10s\n' "idle daemon RSS" "$SMALL_RSS" "$BIG_RSS" "< 100 MiB"
printf '%-52s %12s %8s MiB\n' "peak RSS (start-up, first checks)" "" "$BIG_HWM"
printf '%-52s %10sms %10sms\n' "mean scheduler tick, none due" "$SMALL_TICK" "$BIG_TICK"
printf '%-52s %12s %10sms\n' "mean scheduler tick, $DUE made due at once" "" "$DUE_TICK_MS"
printf '%-52s %12s %11ss\n' "time to poll the $DUE due feeds ($DUE_CLAIMED claimed)" "" "$DUE_SECS"
printf '%-52s %12s %12s\n' "missing-file alerts queued" "$SMALL_ALERTS" "$BIG_ALERTS"
