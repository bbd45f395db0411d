#!/usr/bin/env bash
# A big inbox must slow nothing down. For each store (SQLite, then
# PostgreSQL), `boxhook serve --admin` (its defaults otherwise) on an empty
# store and on one filled with EVENTS events (default 10,000,000), under
# run.sh's delivery load (wrk -t2 -c64 with benches/load/deliveries.lua:
# 3 KiB FILE.UPLOADED deliveries signed by sign_corpus, every one a new
# event, a fresh corpus for every run):
#
#   1. empty store: deliveries/s and p99; then 32 admin readers beside the
#      load (the empty store's memory, for comparison);
#   2. the fill (benches/src/bin/fill_store.rs): copies of the fixture
#      payloads in crates/boxhook-core/fixtures (Box's shapes, 0.25-2.5 KB,
#      mean 1.3 KB), each with its own event and delivery id, received one
#      after the other over the last SPAN_DAYS days; the newest PENDING
#      (EVENTS/1000) pending, the others done (claimed 2 s after arriving
#      and acknowledged, as `work` does). The first event of each day goes
#      through the store's own path (Inbox::store, claim_next, ack); the
#      rest is bulk SQL writing the same rows (SQLite: prepared INSERTs,
#      50,000 per transaction; PostgreSQL: binary COPY into events and
#      event_keys, with the counters, per transaction), which fill_store
#      checks column by column against the row the store wrote. It then
#      checks Inbox::counts, and this script serve's /metrics, against what
#      was filled;
#   3. filled store: `boxhook inbox list` 5 times (and on the empty store);
#      deliveries/s, alternating runs with the empty store's receiver
#      (filled, empty, filled), ratio against the empty store;
#   4. 32 readers asking for /metrics, / and /summary.json as fast as they
#      are answered, for READ_SECONDS, beside the load: the slowest
#      delivery, failures, serve's peak RSS (VmHWM);
#   5. the dashboard polling every second (GET /, /summary.json, /metrics,
#      each timed) under the saturating load, then under a paced load
#      (PRUNE_RATE deliveries/s) in two runs alternated with three without
#      it: page and scrape times; the deliveries' p99 with polling against
#      without, each group's merged from its runs' quantiles;
#   6. `boxhook inbox prune --older-than ...` of the oldest PRUNE (EVENTS/10)
#      done events under the paced load: its duration and the deliveries'
#      p99 during it against the paced runs without polling; bytes on disk per
#      stored event before and after (SQLite: the file and its -wal;
#      PostgreSQL: pg_total_relation_size of every events partition,
#      event_keys and event_counts).
#   Then one table per store, each figure beside its goal, also written to
#   target/scale/table.md with the command; exit status 1 when a goal is
#   missed.
#
#   EVENTS=1000000 bash benches/load/scale.sh
#   EVENTS=200000 STORES=sqlite DURATION=5 READ_SECONDS=5 bash benches/load/scale.sh
#
# Why the latency comparisons use a paced load: pruning runs in batches of
# 25 events on SQLite (100 on PostgreSQL), each followed by a pause four
# times as long as it took, so a prune of 1,000,000 events takes minutes, and a saturating load for minutes would need gigabytes of
# pre-signed deliveries; a paced load measures a delivery's own latency,
# not its wait in a saturated queue, which is what a stall shows in. The
# prune's load is runs of PRUNE_WINDOW seconds back to back, each on a
# corpus signed while the one before runs, merged into one p99 from
# deliveries.lua's quantiles (BOXHOOK_QUANTILES).
#
# PostgreSQL is a throwaway durable server (fsync=on, synchronous_commit=on,
# as production; its defaults otherwise) started from Debian's binaries as
# `nobody`, on a unix socket only, in the work directory. Servers bind
# 127.0.0.1 or a unix socket; every process runs under `timeout`; the work
# directory (WORK_DIR/boxhook-scale-*: stores, corpora, the cluster) is
# removed at exit; logs stay in target/scale/. The script estimates the disk
# the run needs (about 2.1 KB per filled event and the deliveries measured)
# and refuses to start without it.
set -euo pipefail
# One brace group: bash reads all of it before running any, so the file can
# be edited while a run of hours goes on.
{

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
EVENTS="${EVENTS:-10000000}"
PENDING="${PENDING:-$((EVENTS / 1000))}"
PRUNE="${PRUNE:-$((EVENTS / 10))}"
SPAN_DAYS="${SPAN_DAYS:-28}"
STORES="${STORES:-sqlite postgres}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
SIZE="${SIZE:-3072}"
READERS="${READERS:-32}"
READ_SECONDS="${READ_SECONDS:-15}"
PRUNE_RATE="${PRUNE_RATE:-1000}"
PRUNE_WINDOW="${PRUNE_WINDOW:-60}"
MAX_RATE="${MAX_RATE:-30000}"
WORK_DIR="${WORK_DIR:-/tmp}"
out="$root/target/scale"
mkdir -p "$out"

die() { echo "scale.sh: $*" >&2; exit 2; }
for name in EVENTS PENDING PRUNE SPAN_DAYS DURATION CONNECTIONS THREADS SIZE READERS READ_SECONDS PRUNE_RATE PRUNE_WINDOW MAX_RATE; do
  [[ "${!name}" =~ ^[0-9]+$ ]] || die "$name must be a whole number (it is '${!name}')"
done
(( EVENTS >= 1000 )) || die "EVENTS must be at least 1000"
(( PENDING + PRUNE <= EVENTS )) || die "PENDING ($PENDING) + PRUNE ($PRUNE) must not exceed EVENTS ($EVENTS)"
(( PRUNE >= 1 )) || die "PRUNE must be at least 1"
(( SPAN_DAYS >= 1 && SPAN_DAYS <= 29 )) || die "SPAN_DAYS must be 1 to 29: serve prunes done events after 30 days by default, and would prune the filled ones while they are measured"
(( DURATION >= 3 && READ_SECONDS >= 3 && PRUNE_WINDOW >= 10 && PRUNE_RATE >= CONNECTIONS )) || die "DURATION and READ_SECONDS need at least 3 s, PRUNE_WINDOW 10 s, PRUNE_RATE at least one delivery per connection per second"
for store in $STORES; do
  [[ "$store" == sqlite || "$store" == postgres ]] || die "unknown store '$store' in STORES (sqlite, postgres)"
done

# Disk, per store (they run one after the other, each removed after): the
# filled events (bytes per event as filled at 1,000,000, see
# docs/PERFORMANCE.md, and a tenth more), the deliveries the measurements
# store (3 KiB bodies, about 3.7 KB each on disk) at a good machine's rate
# (SQLite 15,000/s, PostgreSQL 8,000/s; the prune's are paced, and a prune
# takes about 0.25 ms (SQLite) or 1 ms (PostgreSQL) per event), the largest
# corpus on disk at once, and 1 GB to spare (3 GB for PostgreSQL's WAL).
declare -A per_event=([sqlite]=1900 [postgres]=2050)
declare -A store_rate=([sqlite]=15000 [postgres]=8000)
declare -A prune_per_kevent_ms=([sqlite]=1000 [postgres]=1000)
delivery_bytes=$(( SIZE + 600 ))
need=0; need_filled=0; need_store=""
for store in $STORES; do
  prune_s=$(( PRUNE * prune_per_kevent_ms[$store] / 1000000 + 60 ))
  delivered=$(( store_rate[$store] * (5 * DURATION + 2 * READ_SECONDS) + PRUNE_RATE * (prune_s + 3 * DURATION) ))
  largest=$(( MAX_RATE * DURATION ))
  for n in $(( store_rate[$store] * READ_SECONDS * 2 )) $(( PRUNE_RATE * PRUNE_WINDOW * 12 / 5 )); do
    if (( n > largest )); then largest=$n; fi
  done
  filled=$(( EVENTS * per_event[$store] * 11 / 10 ))
  n=$(( filled + (delivered + largest) * delivery_bytes + (1 << 30) ))
  if [[ "$store" == postgres ]]; then n=$(( n + (2 << 30) )); fi
  if (( n > need )); then need=$n; need_filled=$filled; need_store=$store; fi
done
mkdir -p "$WORK_DIR"
free="$(df -B1 --output=avail "$WORK_DIR" | tail -1 | tr -d ' ')"
gb() { awk -v b="$1" 'BEGIN { printf "%.1f GB", b / 1e9 }'; }
if (( free < need )); then
  echo "scale.sh: $EVENTS events need about $(gb "$need") free in $WORK_DIR ($need_store, the larger:" \
    "$(gb "$need_filled") for the filled store, the rest for the deliveries measured, their corpora" \
    "and the server's own files; the stores run one after the other); $(gb "$free") is free. Free" \
    "some space, point WORK_DIR at a bigger file system, or lower EVENTS." >&2
  exit 2
fi

if ! command -v wrk >/dev/null; then
  sudo_cmd=""; [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq wrk
fi

cargo build --release --quiet -p boxhook-benches --bin fill_store --bin sign_corpus
cargo build --release --quiet -p boxhook-cli
bin="$root/target/release"
pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [[ " $STORES " == *" postgres "* && ! -x "$pgbin/postgres" ]]; then
  die "no PostgreSQL binaries in /usr/lib/postgresql/*/bin (install postgresql-15, or STORES=sqlite)"
fi

# Bounds: the fill gets 1 ms per event plus 15 minutes; every server the
# whole run's worth.
fill_limit=$(( EVENTS / 1000 + 900 ))
prune_limit=$(( PRUNE * 6 / 1000 + 600 ))
limit=$(( fill_limit * 2 + prune_limit + 3600 ))

work="$(mktemp -d "$WORK_DIR/boxhook-scale-XXXXXX")"
chmod 711 "$work"
pids=()
pg_pid=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -n "$pg_pid" ]]; then
    runuser -u nobody -- "$pgbin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || kill "$pg_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

keys=(--primary-key SamplePrimaryKey --secondary-key SampleSecondaryKey)
started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
ms() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1000 }'; }
thousands() { sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta' <<<"$1"; }
now_ms() { date +%s%3N; }

# --- PostgreSQL -------------------------------------------------------------
pg_start() {
  mkdir -p "$work/pg"; chown nobody "$work/pg"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  runuser -u nobody -- "$pgbin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 >/dev/null
  runuser -u nobody -- timeout --signal=INT "$limit" "$pgbin/postgres" -D "$work/pg/data" -p "$port" \
    -k "$work/pg" -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c max_connections=200 \
    >"$out/postgres.log" 2>&1 &
  pg_pid=$!
  for _ in $(seq 1 300); do
    "$pgbin/pg_isready" -q -h "$work/pg" -p "$port" && return 0
    sleep 0.1
  done
  die "PostgreSQL did not start; see $out/postgres.log"
}
pg_url() { echo "postgres://postgres@localhost/$1?host=$work/pg&port=$port"; }
pg_sql() { "$pgbin/psql" -h "$work/pg" -p "$port" -U postgres -d "$1" -At -v ON_ERROR_STOP=1 -c "$2"; }

# --- serve ------------------------------------------------------------------
# Servers by name: their delivery URL, admin URL, process and its timeout.
declare -A s_url s_admin s_pid s_timeout s_name
# start_serve NAME STORE-ARGS...: `boxhook serve --admin` with its defaults.
start_serve() {
  local name="$1" url="" admin="" t; shift
  local log="$out/$store-$name"
  timeout --signal=TERM "$limit" "$bin/boxhook" "${keys[@]}" serve --listen 127.0.0.1:0 \
    --admin 127.0.0.1:0 "$@" >"$log.stdout" 2>"$log.stderr" &
  t=$!
  pids+=("$t")
  for _ in $(seq 1 600); do
    url="$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$log.stdout")"
    admin="$(sed -n 's|^admin on \(http://127\.0\.0\.1:[0-9]*\)/.*|\1|p' "$log.stderr")"
    [[ -n "$url" && -n "$admin" ]] && break
    kill -0 "$t" 2>/dev/null || die "serve ($name) exited; see $log.stderr"
    sleep 0.1
  done
  [[ -n "$url" && -n "$admin" ]] || die "serve ($name) did not start; see $log.stderr"
  s_url[$name]="$url"; s_admin[$name]="$admin"; s_timeout[$name]="$t"; s_name[$name]="$store-$name"
  s_pid[$name]="$(pgrep -P "$t")"
}
stop_serve() {
  kill "${s_timeout[$1]}" 2>/dev/null || true
  wait "${s_timeout[$1]}" 2>/dev/null || true
  # A line per request: keep the start and the end.
  local log="$out/${s_name[$1]}.stderr"
  if (( $(wc -l <"$log") > 400 )); then
    { head -n 200 "$log"; echo "[... $(( $(wc -l <"$log") - 400 )) lines cut by scale.sh ...]"; tail -n 200 "$log"; } >"$log.cut"
    mv "$log.cut" "$log"
  fi
}
# kib NAME FIELD: a VmRSS/VmHWM line of serve NAME's /proc status, in KiB.
kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/${s_pid[$1]}/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }

# inbox_states NAME: "pending done claimed dead" from serve NAME's /metrics,
# counted afresh (the admin listener counts again when its last count is
# 2 s old).
inbox_states() {
  sleep 2.2
  curl -sf "${s_admin[$1]}/metrics" | awk '
    /^boxhook_inbox_events\{state="pending"\}/ { p = $2 }
    /^boxhook_inbox_events\{state="done"\}/ { d = $2 }
    /^boxhook_inbox_events\{state="claimed"\}/ { c = $2 }
    /^boxhook_inbox_events\{state="dead"\}/ { x = $2 }
    END { printf "%d %d %d %d\n", p, d, c, x }'
}
stored_events() {
  local p d c x
  read -r p d c x <<<"$(inbox_states "$1")"
  echo $(( p + d + c + x ))
}

# --- load -------------------------------------------------------------------
# sign COUNT [PREFIX]: a fresh corpus (new events, signed seconds ago) for
# one run, in PREFIX.0 ... (default $work/corpus).
sign() {
  local prefix="${2:-$work/corpus}"
  rm -f "$prefix".*
  "$bin/sign_corpus" load --count "$1" --size "$SIZE" --threads "$THREADS" --out "$prefix" 2>/dev/null
}
# load_start RUN SERVER SECONDS [DELAY_MS [CORPUS [QUANTILES]]]: wrk in the
# background on a corpus (default $work/corpus), against serve SERVER.
load_start() {
  load_corpus="${5:-$work/corpus}"
  BOXHOOK_CORPUS="$load_corpus" BOXHOOK_THREADS="$THREADS" BOXHOOK_DELAY_MS="${4:-}" BOXHOOK_QUANTILES="${6:-}" \
    timeout --signal=INT "$(( $3 + 120 ))" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$3s" --timeout 60s \
    --latency -s "$root/benches/load/deliveries.lua" "${s_url[$2]}" >"$out/$1.wrk" 2>&1 &
  load_pid=$!
  pids+=("$load_pid")
  load_name="$1"
}
# load_wait: waits for wrk; sets r_* from its result line, and adds the run
# to the totals of its kind (req_KIND, us_KIND).
load_wait() {
  wait "$load_pid" || true
  local result; result="$(grep '^BOXHOOK_RESULT' "$out/$load_name.wrk" || true)"
  [[ -n "$result" ]] || die "wrk gave no result for $load_name; see $out/$load_name.wrk"
  get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
  r_requests="$(get requests)"; r_us="$(get duration_us)"
  r_p99="$(get p99_us)"; r_p50="$(get p50_us)"; r_max="$(get max_us)"
  r_non2xx="$(get non2xx)"; r_repeats="$(get repeats)"
  r_errors=$(( $(get connect) + $(get read) + $(get write) + $(get timeout) ))
  r_rps="$(awk -v r="$r_requests" -v d="$r_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
  rm -f "$load_corpus".*
  log "  $load_name: $r_rps deliveries/s, p50 $(ms "$r_p50"), p99 $(ms "$r_p99"), max $(ms "$r_max"), non-2xx $r_non2xx, socket errors $r_errors, repeats $r_repeats"
  if (( r_repeats > 0 )); then
    notes+=("$load_name: $r_repeats deliveries were repeats (the corpus ran out): raise MAX_RATE")
  fi
  if (( r_non2xx + r_errors > 0 )); then
    notes+=("$load_name: $r_non2xx deliveries answered non-2xx, $r_errors socket errors (see $out/$load_name.wrk)")
  fi
}
# load RUN SERVER SECONDS: run.sh's load, saturating, on a corpus sized for
# it: twice the fastest rate seen so far (every delivery must be new).
load() {
  sign "$(( rate_guess * $3 * 2 + 2000 ))"
  load_start "$1" "$2" "$3"
  load_wait
  if (( r_rps > rate_guess )); then rate_guess=$r_rps; fi
}
# readers RUN SERVER SECONDS: READERS connections asking serve SERVER's
# admin listener for /metrics, / and /summary.json as fast as it answers;
# sets rd_requests, rd_non2xx, rd_errors.
readers() {
  timeout "$(( $3 + 60 ))" wrk -t2 -c"$READERS" -d"$3s" --timeout 60s \
    -s "$root/benches/load/readers.lua" "${s_admin[$2]}" >"$out/$1.readers" 2>&1 || true
  local result; result="$(grep '^BOXHOOK_READERS' "$out/$1.readers" || true)"
  [[ -n "$result" ]] || die "the readers' wrk gave no result; see $out/$1.readers"
  get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
  rd_requests="$(get requests)"; rd_non2xx="$(get non2xx)"
  rd_errors=$(( $(get connect) + $(get read) + $(get write) + $(get timeout) ))
  log "  $1: $rd_requests admin answers, non-2xx $rd_non2xx, socket errors $rd_errors, p99 $(ms "$(get p99_us)")"
}
delay_ms=$(( CONNECTIONS * 1000 / PRUNE_RATE ))

# poll SERVER SECONDS FILE: every second, GET /, /summary.json and /metrics
# one after the other, as an open dashboard and a scraper do; one line per
# request: path, HTTP status, seconds.
poll() {
  local end=$(( $(date +%s) + $2 )) path
  : >"$3"
  while (( $(date +%s) < end )); do
    for path in / /summary.json /metrics; do
      printf '%s %s\n' "$path" "$(curl -s -o /dev/null --max-time 30 -w '%{http_code} %{time_total}' "${s_admin[$1]}$path")" >>"$3"
    done
    sleep 1
  done
}
# poll_stat FILE PATH: "max median count non-200" of one path's times, in ms.
poll_stat() {
  awk -v want="$2" '$1 == want { print ($2 == 200 ? 0 : 1), $3 * 1000 }' "$1" | sort -n -k2 |
    awk '{ n++; t[n] = $2; bad += $1 }
      END { if (!n) { print "- - 0 0"; exit }
            printf "%.1f %.1f %d %d\n", t[n], t[int((n + 1) / 2)], n, bad }'
}

# inbox_list_ms STORE-ARGS...: `boxhook inbox list` 5 times; "median max" ms.
inbox_list_ms() {
  local times=() i t0 t1
  for i in 1 2 3 4 5; do
    t0="$(date +%s%N)"
    timeout 120 "$bin/boxhook" inbox list "$@" >"$out/inbox-list.txt" 2>&1 || die "inbox list failed: $(tail -1 "$out/inbox-list.txt")"
    t1="$(date +%s%N)"
    times+=("$(( (t1 - t0) / 1000 ))")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { printf "%.1f %.1f\n", t[3] / 1000, t[5] / 1000 }'
}

# bytes_on_disk STORE: what the filled store takes on disk now.
bytes_on_disk() {
  case "$1" in
    sqlite) local total=0 f
      for f in "$work/big.sqlite" "$work/big.sqlite-wal"; do
        if [[ -f "$f" ]]; then total=$(( total + $(stat -c %s "$f") )); fi
      done
      echo "$total" ;;
    postgres) pg_sql big "SELECT (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('events'))
        + pg_total_relation_size('event_keys') + pg_total_relation_size('event_counts')" ;;
  esac
}
sqlite_parts() { echo "file $(stat -c %s "$work/big.sqlite") + wal $(stat -c %s "$work/big.sqlite-wal" 2>/dev/null || echo 0) bytes"; }

# ok EXPR: "yes" when the awk expression holds, else "**no**" (counted).
ok() {
  if awk "BEGIN { exit !($1) }"; then echo yes; else echo "**no**"; fi
}
per_second() { awk -v r="$1" -v u="$2" 'BEGIN { printf "%.0f", r / (u / 1e6) }'; }
# merged_p99 FILE:REQUESTS...: the 99th percentile of runs back to back, from
# their quantile files (deliveries.lua's BOXHOOK_QUANTILES), each quantile
# weighted by a thousandth of its run's requests.
merged_p99() {
  local spec
  for spec in "$@"; do
    awk -v n="${spec##*:}" '{ print $1, n / 1000 }' "${spec%:*}"
  done | sort -n -k1 | awk '{ v[NR] = $1; w[NR] = $2; total += $2 }
    END { for (i = 1; i <= NR; i++) { acc += w[i]; if (acc >= 0.99 * total) { print v[i]; exit } } print v[NR] }'
}

notes=()
declare -A tables

bench() {
  local store="$1" store_args empty_args
  log "== $store: $(thousands "$EVENTS") events, $(thousands "$PENDING") pending, prune $(thousands "$PRUNE")"
  case "$store" in
    sqlite) store_args=(--store "sqlite:$work/big.sqlite"); empty_args=(--store "sqlite:$work/empty.sqlite") ;;
    postgres)
      pg_start
      pg_sql postgres "CREATE DATABASE empty" >/dev/null; pg_sql postgres "CREATE DATABASE big" >/dev/null
      store_args=(--store "$(pg_url big)"); empty_args=(--store "$(pg_url empty)") ;;
  esac

  # The empty store's receiver stays up, idle, until the filled one has
  # been measured against it.
  rate_guess=$(( MAX_RATE / 2 ))
  start_serve empty "${empty_args[@]}"
  sleep 1
  load "$store-empty-1" empty "$DURATION"
  rate_guess=$(( r_rps > 1000 ? r_rps : 1000 ))
  local e_req="$r_requests" e_us="$r_us" e_p99="$r_p99"
  local empty_idle; empty_idle="$(kib empty VmRSS)"
  sign "$(( rate_guess * READ_SECONDS * 2 + 2000 ))"
  load_start "$store-empty-readers" empty "$READ_SECONDS"
  readers "$store-empty-readers" empty "$READ_SECONDS"
  load_wait
  local empty_readers_max="$r_max"
  local empty_hwm; empty_hwm="$(kib empty VmHWM)"

  # The fill.
  # A two-hour pause in the traffic after the PRUNE oldest events: the
  # prune's cut-off falls in its middle. `inbox prune --older-than` cuts
  # relative to each batch's clock, so its cut-off moves on while it runs;
  # an hour either way keeps it exactly PRUNE events.
  local now from step gap=7200000
  now="$(now_ms)"
  from=$(( now - SPAN_DAYS * 86400000 ))
  step=$(( (SPAN_DAYS * 86400000 - 3600000 - gap) / EVENTS ))
  (( step > 0 )) || die "EVENTS is too many for SPAN_DAYS: less than 1 ms between events"
  log "filling $(thousands "$EVENTS") events (one every $step ms from $(date -u -d "@$(( from / 1000 ))" +%FT%TZ))"
  local fill_args=(--events "$EVENTS" --pending "$PENDING" --from-ms "$from" --step-ms "$step" --gap-after "$PRUNE" --gap-ms "$gap")
  case "$store" in
    sqlite) fill_args+=(--store "sqlite:$work/big.sqlite") ;;
    postgres) fill_args+=(--store "$(pg_url big)") ;;
  esac
  timeout "$fill_limit" "$bin/fill_store" "${fill_args[@]}" >"$out/$store-fill.out" 2> >(tee "$out/$store-fill.log" >&2) \
    || die "fill_store failed; see $out/$store-fill.log"
  local fill fill_seconds fill_rate filled_bytes
  fill="$(grep '^FILL_RESULT' "$out/$store-fill.out")"
  fill_seconds="$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$fill")"
  fill_rate="$(sed -n 's/.* per_second=\([0-9]*\).*/\1/p' <<<"$fill")"
  filled_bytes="$(bytes_on_disk "$store")"
  log "filled in $fill_seconds s ($fill_rate events/s); $filled_bytes bytes on disk"

  # serve on the filled store: counts, inbox list.
  start_serve big "${store_args[@]}"
  local idle; idle="$(kib big VmRSS)"
  local states; states="$(inbox_states big)"
  [[ "$states" == "$PENDING $(( EVENTS - PENDING )) 0 0" ]] \
    || die "serve's /metrics says pending/done/claimed/dead = $states, not what was filled ($PENDING $(( EVENTS - PENDING )) 0 0)"
  log "serve's /metrics: $PENDING pending, $(( EVENTS - PENDING )) done (as filled)"
  local list list_median list_max list_total
  list="$(inbox_list_ms "${store_args[@]}")"
  read -r list_median list_max <<<"$list"
  list_total="$(tail -1 "$out/inbox-list.txt")"
  log "inbox list: median $list_median ms, max $list_max ms ($list_total)"

  # A first run of 3 s, not counted: the first seconds of stores into a
  # file just written by the fill stalled once (a 440 ms stall of the first
  # ~500 deliveries on SQLite at 1,000,000 events, gone when serve started
  # again on the same file; PostgreSQL's buffers start cold); a receiver
  # that has been running for months is past both.
  load "$store-big-warmup" big 3
  local warm_p99="$r_p99" warm_max="$r_max"

  # Throughput: runs alternate between the two receivers, so that the
  # machine's other work weighs on both alike.
  load "$store-big-1" big "$DURATION"
  local f_req="$r_requests" f_us="$r_us" f1_p99="$r_p99"
  load "$store-empty-2" empty "$DURATION"
  e_req=$(( e_req + r_requests )); e_us=$(( e_us + r_us )); local e2_p99="$r_p99"
  load "$store-big-2" big "$DURATION"
  f_req=$(( f_req + r_requests )); f_us=$(( f_us + r_us )); local f2_p99="$r_p99"
  local empty_list; empty_list="$(inbox_list_ms "${empty_args[@]}")"
  stop_serve empty
  case "$store" in
    sqlite) rm -f "$work"/empty.sqlite* ;;
    postgres) pg_sql postgres "DROP DATABASE empty" >/dev/null ;;
  esac

  # Readers.
  sign "$(( rate_guess * READ_SECONDS * 2 + 2000 ))"
  load_start "$store-big-readers" big "$READ_SECONDS"
  readers "$store-big-readers" big "$READ_SECONDS"
  load_wait
  local readers_max="$r_max" readers_failed=$(( r_non2xx + r_errors )) readers_rps="$r_rps"
  local read_requests="$rd_requests" read_non2xx="$rd_non2xx" read_errors="$rd_errors"
  local hwm; hwm="$(kib big VmHWM)"
  log "serve's VmHWM $(mib "$hwm") (idle $(mib "$idle"))"

  # The dashboard polling every second and a scraper: under the same
  # saturating load (for the page and scrape times), then under a paced
  # load between two paced runs without it (for the deliveries' p99).
  sign "$(( rate_guess * DURATION * 2 + 2000 ))"
  load_start "$store-big-polled" big "$DURATION"
  poll big "$DURATION" "$out/$store-poll.txt"
  load_wait
  local polled_sat_p99="$r_p99"
  # Paced runs alternate, three without polling and two with (W P W P W),
  # each group's p99 merged from its runs' quantiles: one run's p99 moves
  # by more than a quarter from run to run on this machine.
  local without_specs=() polled_specs=() without_p99s=() polled_p99s=()
  local polled_req=0 polled_us=0 paced_req=0 paced_us=0
  paced() {
    sign "$(( PRUNE_RATE * DURATION * 6 / 5 + 2000 ))"
    load_start "$1" big "$DURATION" "$delay_ms" "" "$out/$1.q"
    if [[ -n "${2:-}" ]]; then poll big "$DURATION" "$2"; fi
    load_wait
    if [[ -n "${2:-}" ]]; then
      polled_specs+=("$out/$1.q:$r_requests"); polled_p99s+=("$(ms "$r_p99")")
      polled_req=$(( polled_req + r_requests )); polled_us=$(( polled_us + r_us ))
    else
      without_specs+=("$out/$1.q:$r_requests"); without_p99s+=("$(ms "$r_p99")")
      paced_req=$(( paced_req + r_requests )); paced_us=$(( paced_us + r_us ))
    fi
  }
  paced "$store-paced-1"
  paced "$store-paced-polled-1" "$out/$store-poll-paced-1.txt"
  paced "$store-paced-2"
  paced "$store-paced-polled-2" "$out/$store-poll-paced-2.txt"
  paced "$store-paced-3"
  local paced_p99 polled_p99 paced_rps polled_rps
  paced_p99="$(merged_p99 "${without_specs[@]}")"
  polled_p99="$(merged_p99 "${polled_specs[@]}")"
  paced_rps="$(per_second "$paced_req" "$paced_us")"
  polled_rps="$(per_second "$polled_req" "$polled_us")"
  log "paced p99, merged: without $(ms "$paced_p99") (runs ${without_p99s[*]}), polled $(ms "$polled_p99") (runs ${polled_p99s[*]})"
  cat "$out/$store-poll.txt" "$out/$store-poll-paced-1.txt" "$out/$store-poll-paced-2.txt" >"$out/$store-poll-all.txt"
  local metrics_stat page_stat summary_stat
  metrics_stat="$(poll_stat "$out/$store-poll-all.txt" /metrics)"
  page_stat="$(poll_stat "$out/$store-poll-all.txt" /)"
  summary_stat="$(poll_stat "$out/$store-poll-all.txt" /summary.json)"
  log "polled (max median count non-200, ms): /metrics $metrics_stat; / $page_stat; /summary.json $summary_stat"

  # The prune, under the paced load (compared with the paced run just
  # before it).
  local before_events before_bytes before_parts=""
  before_events="$(stored_events big)"
  before_bytes="$(bytes_on_disk "$store")"
  if [[ "$store" == sqlite ]]; then before_parts="$(sqlite_parts)"; fi
  log "before the prune: $before_events events, $before_bytes bytes on disk $before_parts"
  # Runs of PRUNE_WINDOW seconds back to back while the prune lasts, each
  # on a corpus signed while the one before runs (no corpus of the whole
  # prune's size is needed); merged into one p99.
  local per_window=$(( PRUNE_RATE * PRUNE_WINDOW * 6 / 5 + 2000 ))
  local w=0 specs=() prune_max=0 prune_req=0 prune_us=0 prune_failed=0
  sign "$per_window" "$work/prune-0"
  load_start "$store-prune-0" big "$PRUNE_WINDOW" "$delay_ms" "$work/prune-0" "$out/$store-prune-0.q"
  sleep 2
  local cutoff=$(( from + PRUNE * step + gap / 2 ))
  local older=$(( ($(now_ms) - cutoff) / 1000 ))
  local t0; t0="$(now_ms)"
  (
    status=0
    timeout "$prune_limit" "$bin/boxhook" inbox prune --older-than "${older}s" "${store_args[@]}" \
      >"$out/$store-prune.out" 2>&1 || status=$?
    echo "$status $(now_ms)" >"$work/prune.done"
  ) &
  local prune_pid=$!
  pids+=("$prune_pid")
  while :; do
    sign "$per_window" "$work/prune-$(( w + 1 ))"
    while kill -0 "$load_pid" 2>/dev/null && kill -0 "$prune_pid" 2>/dev/null; do sleep 0.2; done
    local ended=no
    if ! kill -0 "$prune_pid" 2>/dev/null; then
      ended=yes
      sleep 1; kill -INT "$load_pid" 2>/dev/null || true
    fi
    load_wait
    specs+=("$out/$store-prune-$w.q:$r_requests")
    prune_req=$(( prune_req + r_requests )); prune_us=$(( prune_us + r_us ))
    prune_failed=$(( prune_failed + r_non2xx + r_errors ))
    if (( r_max > prune_max )); then prune_max=$r_max; fi
    [[ "$ended" == yes ]] && break
    w=$(( w + 1 ))
    load_start "$store-prune-$w" big "$PRUNE_WINDOW" "$delay_ms" "$work/prune-$w" "$out/$store-prune-$w.q"
  done
  rm -f "$work"/prune-*
  wait "$prune_pid" || true
  local prune_status t1
  read -r prune_status t1 <"$work/prune.done"
  local prune_p99 prune_rps
  prune_p99="$(merged_p99 "${specs[@]}")"
  prune_rps="$(per_second "$prune_req" "$prune_us")"
  (( prune_status == 0 )) || die "inbox prune failed ($prune_status): $(tail -2 "$out/$store-prune.out")"
  local prune_line pruned_done
  prune_line="$(grep '^pruned ' "$out/$store-prune.out" | tail -1)"
  pruned_done="$(sed -n 's/.*: \([0-9]*\) done, .*/\1/p' <<<"$prune_line")"
  [[ "$pruned_done" == "$PRUNE" ]] || notes+=("$store: inbox prune removed ${pruned_done:-?} done events, not $PRUNE: $prune_line")
  local prune_taken; prune_taken="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1000 }')"
  log "prune: $prune_line ($prune_taken s); deliveries during it: p99 $(ms "$prune_p99"), max $(ms "$prune_max") over $(( w + 1 )) run(s)"
  local after_events after_bytes after_parts=""
  after_events="$(stored_events big)"
  after_bytes="$(bytes_on_disk "$store")"
  if [[ "$store" == sqlite ]]; then after_parts="$(sqlite_parts)"; fi
  log "after the prune: $after_events events, $after_bytes bytes on disk $after_parts"
  stop_serve big
  if [[ "$store" == sqlite ]]; then
    after_parts="$after_parts; $(stat -c %s "$work/big.sqlite") bytes once serve stopped (its WAL checkpointed and removed)"
  fi

  # The table.
  local e_rps f_rps ratio
  e_rps="$(per_second "$e_req" "$e_us")"; f_rps="$(per_second "$f_req" "$f_us")"
  ratio="$(awk -v a="$f_rps" -v b="$e_rps" 'BEGIN { printf "%.2f", a / b }')"
  local bound=$(( idle + 80 * 1024 ))
  local m_max m_p50 m_n m_bad p_max p_p50 p_n p_bad s_max s_p50 s_n s_bad
  read -r m_max m_p50 m_n m_bad <<<"$metrics_stat"
  read -r p_max p_p50 p_n p_bad <<<"$page_stat"
  read -r s_max s_p50 s_n s_bad <<<"$summary_stat"
  local t=""
  row() { t+="| $1 | $2 | $3 | $4 |"$'\n'; }
  row "what" "measured" "goal" "met"
  row "---" "---" "---" "---"
  row "events filled by fill_store (first of each day through the store, the rest bulk SQL)" \
    "$(thousands "$EVENTS") in $fill_seconds s ($(thousands "$fill_rate")/s); Inbox::counts and /metrics: $(thousands $(( EVENTS - PENDING ))) done, $(thousands "$PENDING") pending" \
    "counts exact" "yes"
  row "deliveries/s (wrk -t$THREADS -c$CONNECTIONS, 2 × $DURATION s each, alternated): empty store → $(thousands "$EVENTS") stored" \
    "$e_rps → $f_rps (ratio $ratio)" "ratio ≥ 0.9" "$(ok "$ratio >= 0.9")"
  row "delivery p99: empty (2 runs) → stored (2 runs)" "$(ms "$e_p99"), $(ms "$e2_p99") → $(ms "$f1_p99"), $(ms "$f2_p99")" "" ""
  row "the stored receiver's first 3 s (not counted above): p99, max" "$(ms "$warm_p99"), $(ms "$warm_max")" "" ""
  row "delivery p99 at $PRUNE_RATE/s (paced: wrk -c$CONNECTIONS, $delay_ms ms between a connection's requests), runs alternated, each group's p99 from its merged quantiles: 3 runs without / 2 with the dashboard polling every 1 s" \
    "$(ms "$paced_p99") ($paced_rps/s; runs ${without_p99s[*]}) / $(ms "$polled_p99") ($polled_rps/s; runs ${polled_p99s[*]}); under the saturating load with polling: $(ms "$polled_sat_p99")" \
    "with ≤ 1.25 × without" "$(ok "$polled_p99 <= 1.25 * $paced_p99")"
  row "/metrics scrape while deliveries flow (saturating, then paced): max (median) of $m_n, one a second" \
    "$m_max ms ($m_p50 ms), non-200: $m_bad" "≤ 50 ms" "$(ok "$m_max <= 50 && $m_bad == 0")"
  row "dashboard page / while deliveries flow: max (median) of $p_n" \
    "$p_max ms ($p_p50 ms), non-200: $p_bad" "≤ 100 ms" "$(ok "$p_max <= 100 && $p_bad == 0")"
  row "/summary.json (what the page polls): max (median) of $s_n" "$s_max ms ($s_p50 ms), non-200: $s_bad" "" ""
  local el_median el_max
  read -r el_median el_max <<<"$empty_list"
  row "\`boxhook inbox list\` (the newest 50 and the total), process start to exit: median (max) of 5" \
    "$list_median ms ($list_max ms); empty store: $el_median ms ($el_max ms)" "≤ 100 ms" "$(ok "$list_max <= 100")"
  row "$READERS readers of /metrics, / and /summary.json for $READ_SECONDS s under the delivery load: slowest delivery" \
    "$(ms "$readers_max") ($readers_rps deliveries/s, $readers_failed failed); empty store: $(ms "$empty_readers_max"); $(thousands "$read_requests") admin answers ($read_non2xx non-2xx; $read_errors connections closed under a reader by the admin listener's bounds: 32 connections, 100 requests each)" \
    "< 1 s, no delivery failed" "$(ok "$readers_max < 1000000 && $readers_failed == 0")"
  row "serve's peak RSS (VmHWM) after the readers; idle at start; the empty store's after its readers" \
    "$(mib "$hwm"); $(mib "$idle"); $(mib "$empty_hwm") (idle $(mib "$empty_idle"))" \
    "≤ idle + 80 MiB (serve's bound for bodies and connection buffers)" "$(ok "$hwm <= $bound")"
  row "prune of the oldest $(thousands "$PRUNE") done events (\`inbox prune --older-than ${older}s\`) while deliveries flow" \
    "$prune_taken s: $prune_line" "exactly $(thousands "$PRUNE")" "$(ok "${pruned_done:-0} == $PRUNE")"
  row "delivery p99 at $PRUNE_RATE/s (wrk -c$CONNECTIONS, $delay_ms ms between a connection's requests): without (the 3 paced runs above, merged) → during the prune" \
    "$(ms "$paced_p99") ($paced_rps/s) → $(ms "$prune_p99") ($prune_rps/s, max $(ms "$prune_max"), $prune_failed failed)" "≤ 2 × without" \
    "$(ok "$prune_p99 <= 2 * $paced_p99 && $prune_failed == 0")"
  row "bytes on disk per stored event: as filled; before the prune; after it" \
    "$(( filled_bytes / EVENTS )) ($(gb "$filled_bytes") / $(thousands "$EVENTS")); $(( before_bytes / before_events )) ($(gb "$before_bytes") / $(thousands "$before_events")); $(( after_bytes / after_events )) ($(gb "$after_bytes") / $(thousands "$after_events"))" \
    "" ""
  if [[ "$store" == sqlite ]]; then
    row "SQLite file: before / after the prune" "$before_parts / $after_parts" "" ""
  fi
  tables[$store]="$t"
  if [[ "$store" == postgres ]]; then
    runuser -u nobody -- "$pgbin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null
    pg_pid=""
    rm -rf "$work/pg"
  else
    rm -f "$work"/big.sqlite*
  fi
}

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(rustc --version)${pgbin:+, $("$pgbin/postgres" --version)}"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); free disk $(gb "$free") in $WORK_DIR, about $(gb "$need") needed"
for store in $STORES; do
  bench "$store"
done
command_line="EVENTS=$EVENTS PENDING=$PENDING PRUNE=$PRUNE SPAN_DAYS=$SPAN_DAYS STORES=\"$STORES\" DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS SIZE=$SIZE READERS=$READERS READ_SECONDS=$READ_SECONDS PRUNE_RATE=$PRUNE_RATE bash benches/load/scale.sh"
{
  echo
  echo "\`$command_line\`, started $started_at; $(nproc) cores (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
  for store in $STORES; do
    echo
    echo "**$store**, $(thousands "$EVENTS") events stored"
    echo
    printf '%s' "${tables[$store]}"
  done
  if (( ${#notes[@]} > 0 )); then
    echo
    printf -- '- %s\n' "${notes[@]}"
  fi
} | tee "$out/table.md"
missed="$(grep -c '\*\*no\*\*' "$out/table.md" || true)"
if (( missed > 0 || ${#notes[@]} > 0 )); then
  echo "scale.sh: $missed goal(s) missed, ${#notes[@]} note(s); logs in $out" >&2
  exit 1
fi
exit 0
}
