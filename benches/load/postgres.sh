#!/usr/bin/env bash
# Receivers and workers on PostgreSQL against SQLite, one run:
#   serve on SQLite            one `boxhook serve --inbox F`
#   serve on Postgres          one `boxhook serve --store postgres://…`
#   2 x serve on Postgres      two receivers on the same database, each
#                              loaded by its own wrk with its own events
#   work --exec true           a no-op command per event (SQLite, Postgres),
#                              WORK_SECONDS on the events stored above
#   work --forward             POST, signed like Box, to a local 200 server
# PostgreSQL is a throwaway durable server (fsync=on, synchronous_commit=on,
# as production) started from Debian's binaries as `nobody`, on a unix
# socket in a temp dir. 127.0.0.1 only; everything started is stopped.
#
#   bash benches/load/postgres.sh   # DURATION=8 CONNECTIONS=32 CONCURRENCY=8 WORK_SECONDS=15
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
DURATION="${DURATION:-8}"
CONNECTIONS="${CONNECTIONS:-32}"
CONCURRENCY="${CONCURRENCY:-8}"
COUNT="${COUNT:-160000}"
SIZE="${SIZE:-3072}"
out="$root/target/load-pg"
rm -rf "$out"; mkdir -p "$out"

cargo build --release --quiet -p boxhook-benches --bins
cargo build --release --quiet -p boxhook-cli
bin="$root/target/release"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

pids=()
pgdir="$(mktemp -d /tmp/boxhook-pgbench-XXXXXX)"
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  runuser -u nobody -- "$pgbin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$pgdir"
}
trap cleanup EXIT
chown nobody "$pgdir"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
runuser -u nobody -- "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 >/dev/null
runuser -u nobody -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-p $port -k $pgdir -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c max_connections=200" start >/dev/null
for db in one two; do runuser -u nobody -- "$pgbin/createdb" -h "$pgdir" -p "$port" -U postgres "$db"; done
pg() { echo "postgres://postgres@localhost/$1?host=$pgdir&port=$port"; }

echo "machine: $(nproc) cores, $(rustc --version), $("$pgbin/postgres" --version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/sign_corpus" load --count "$COUNT" --size "$SIZE" --threads 4 --out "$out/corpus"
ln -s "$out/corpus.2" "$out/other.0"; ln -s "$out/corpus.3" "$out/other.1"

keys=(--primary-key SamplePrimaryKey --secondary-key SampleSecondaryKey)
# serve NAME STORE-ARGS...: starts a receiver, sets $url.
serve() {
  local name="$1"; shift
  timeout --signal=TERM "$((DURATION + 120))" "$bin/boxhook" "${keys[@]}" serve --listen 127.0.0.1:0 "$@" \
    >"$out/$name.stdout" 2>"$out/$name.stderr" &
  pids+=("$!")
  for _ in $(seq 1 200); do
    url="$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$out/$name.stdout")"
    [[ -n "$url" ]] && return 0
    sleep 0.1
  done
  echo "postgres.sh: $name did not start; see $out/$name.stderr" >&2; exit 1
}
# load NAME CORPUS THREADS CONNECTIONS URL: wrk, prints requests/s.
load() {
  BOXHOOK_CORPUS="$2" BOXHOOK_THREADS="$3" timeout "$((DURATION + 60))" \
    wrk -t"$3" -c"$4" -d"${DURATION}s" --latency -s "$root/benches/load/deliveries.lua" "$5" >"$out/$1.wrk" 2>&1 || true
  local result; result="$(grep '^BOXHOOK_RESULT' "$out/$1.wrk")"
  get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
  [[ "$(get non2xx)" == 0 && "$(get repeats)" == 0 ]] || { echo "postgres.sh: $1: $result" >&2; exit 1; }
  awk -v r="$(get requests)" -v d="$(get duration_us)" 'BEGIN { printf "%.0f", r / (d / 1e6) }'
}
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; pids=(); }

serve sqlite --inbox "$out/inbox.sqlite"; sqlite_rps="$(load sqlite "$out/corpus" 2 "$CONNECTIONS" "$url")"; stop_all
# WAL flushes against commits: how many stores one fsync carried.
walstat() {
  "$pgbin/psql" -h "$pgdir" -p "$port" -U postgres -d one -At -c \
    "SELECT (SELECT wal_sync FROM pg_stat_wal) || ' ' || (SELECT xact_commit FROM pg_stat_database WHERE datname = 'one')"
}
# CPU ticks (user + system) of the given processes, and of the whole machine.
ticks_of() { local t=0 p; for p in "$@"; do [[ -r "/proc/$p/stat" ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
serve pg1 --store "$(pg one)"; sleep 1; before="$(walstat)"
receiver="$(pgrep -P "${pids[-1]}")"
cpu0=("$(ticks_of "$receiver")" "$(ticks_of $(pgrep -u nobody postgres))" "$(machine_ticks)")
pg1_rps="$(load pg1 "$out/corpus" 2 "$CONNECTIONS" "$url")"; after="$(walstat)"
cpu1=("$(ticks_of "$receiver")" "$(ticks_of $(pgrep -u nobody postgres))" "$(machine_ticks)")
stop_all
cpu_split="$(awk -v r="$((cpu1[0] - cpu0[0]))" -v p="$((cpu1[1] - cpu0[1]))" -v m="$((cpu1[2] - cpu0[2]))" \
  'BEGIN { printf "receiver %.0f %%, PostgreSQL %.0f %%, the rest (wrk, kernel) %.0f %% of %.1f CPU-seconds", 100 * r / m, 100 * p / m, 100 * (m - r - p) / m, m / 100 }')"
read -r sync0 commit0 <<<"$before"; read -r sync1 commit1 <<<"$after"
group="$(awk -v s="$((sync1 - sync0))" -v c="$((commit1 - commit0))" 'BEGIN { printf "%d WAL fsyncs for %d commits: %.1f commits per fsync", s, c, c / s }')"
serve pg2a --store "$(pg two)"; url_a="$url"; serve pg2b --store "$(pg two)"; url_b="$url"
load pg2a "$out/corpus" 2 "$((CONNECTIONS / 2))" "$url_a" >"$out/pg2a.rps" &
loader=$!
load pg2b "$out/other" 2 "$((CONNECTIONS / 2))" "$url_b" >"$out/pg2b.rps"
wait "$loader"
pg2_rps="$(( $(cat "$out/pg2a.rps") + $(cat "$out/pg2b.rps") ))"; stop_all
echo "load after serving: $(cut -d' ' -f1-3 /proc/loadavg)"

# work NAME STORE HANDLER-ARGS...: runs a worker for WORK_SECONDS on events
# already stored, then SIGTERM; prints events done per second.
WORK_SECONDS="${WORK_SECONDS:-15}"
done_in() {
  "$bin/boxhook" inbox list --store "$1" --state done | tail -n 1 | sed 's/ event(s)//'
}
work() {
  local name="$1" store="$2"; shift 2
  local before start end after
  before="$(done_in "$store")"; start="$(date +%s.%N)"
  "$bin/boxhook" "${keys[@]}" work --store "$store" --concurrency "$CONCURRENCY" --grace 5 "$@" \
    >"$out/$name.out" 2>"$out/$name.err" &
  local worker=$!
  sleep "$WORK_SECONDS"; kill -TERM "$worker"; wait "$worker" || true
  end="$(date +%s.%N)"; after="$(done_in "$store")"
  awk -v n="$((after - before))" -v s="$start" -v e="$end" 'BEGIN { printf "%d events in %.1f s: %.0f/s", n, e - s, n / (e - s) }'
}
work_sqlite="$(work work-sqlite "sqlite:$out/inbox.sqlite" --exec true)"
work_pg="$(work work-pg "$(pg one)" --exec true)"
timeout 600 "$bin/bare_server" --listen 127.0.0.1:0 --for-seconds 500 >"$out/bare.stdout" 2>&1 &
pids+=("$!")
sleep 0.5
bare="$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1/|p' "$out/bare.stdout")"
forward_pg="$(work forward-pg "$(pg two)" --forward "$bare")"
stop_all

echo
echo "| run | figure |"
echo "|---|---:|"
echo "| serve, SQLite (wrk -t2 -c$CONNECTIONS) | $sqlite_rps deliveries/s |"
echo "| serve, PostgreSQL, 1 receiver (wrk -t2 -c$CONNECTIONS) | $pg1_rps deliveries/s |"
echo "| serve, PostgreSQL, 2 receivers, same database (2 x wrk -t2 -c$((CONNECTIONS / 2))) | $pg2_rps deliveries/s |"
echo "| group commit, 1 receiver (PostgreSQL's own) | $group |"
echo "| CPU during the 1-receiver run (/proc, ticks of 10 ms) | $cpu_split |"
echo "| work --exec true, SQLite, --concurrency $CONCURRENCY | $work_sqlite |"
echo "| work --exec true, PostgreSQL, --concurrency $CONCURRENCY | $work_pg |"
echo "| work --forward (local 200 server), PostgreSQL, --concurrency $CONCURRENCY | $forward_pg |"
echo
echo "load average (1/5/15 min) at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
