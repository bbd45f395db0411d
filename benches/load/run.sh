#!/usr/bin/env bash
# Loopback throughput, one run, one load generator, same connections:
#   bare    a bare hyper server that reads the body and answers 200
#           (benches/src/bin/bare_server.rs)
#   boxhook boxhook's verify layer + router, a no-op handler, in-memory
#           idempotency (benches/src/bin/boxhook_server.rs)
#   boxhook-metrics
#           the same, recording boxhook's metrics into a Prometheus recorder
#           (boxhook_server --metrics), as `boxhook serve --admin` does
#   serve   `boxhook serve`: the same stack storing every event in its
#           SQLite inbox (durable: synchronous=FULL; concurrent stores share
#           one commit, and each is answered after the commit holding it)
# Every server gets the same pre-signed deliveries (each a new event, signed
# seconds before the run) from wrk with benches/load/deliveries.lua.
#
#   bash benches/load/run.sh                      # 10 s x 64 connections each
#   DURATION=5 CONNECTIONS=32 bash benches/load/run.sh
#
# 127.0.0.1 only. Bounded: each server runs under `timeout` and exits by
# itself; wrk runs DURATION seconds; the script kills what it started.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
COUNT="${COUNT:-600000}"
SIZE="${SIZE:-3072}"
SERVERS="${SERVERS:-bare boxhook boxhook-metrics serve}"
out="$root/target/load"
mkdir -p "$out"

if ! command -v wrk >/dev/null; then
  sudo_cmd=""; [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq wrk
fi

cargo build --release --quiet -p boxhook-benches --bins
cargo build --release --quiet -p boxhook-cli
bin="$root/target/release"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME CMD...: runs CMD in the background (bounded by `timeout`) and
# sets $url from its "listening on http://..." line.
start() {
  local name="$1"; shift
  timeout --signal=TERM "$((DURATION + 180))" "$@" >"$out/$name.stdout" 2>"$out/$name.stderr" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 1 200); do
    url="$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1/|p' "$out/$name.stdout")"
    [[ -n "$url" ]] && return 0
    sleep 0.1
  done
  echo "run.sh: $name did not start; see $out/$name.stderr" >&2
  exit 1
}

stop() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(rustc --version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "each server: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $SIZE-byte FILE.UPLOADED bodies"

rm -f "$out"/corpus.tsv "$out"/corpus.[0-9]*
"$bin/sign_corpus" load --count "$COUNT" --size "$SIZE" --threads "$THREADS" --out "$out/corpus"

declare -A rps repeats non2xx
for server in $SERVERS; do
  case "$server" in
    bare) start bare "$bin/bare_server" --listen 127.0.0.1:0 --for-seconds "$((DURATION + 120))" ;;
    boxhook) start boxhook "$bin/boxhook_server" --listen 127.0.0.1:0 --for-seconds "$((DURATION + 120))" ;;
    boxhook-metrics) start boxhook-metrics "$bin/boxhook_server" --listen 127.0.0.1:0 --for-seconds "$((DURATION + 120))" --metrics ;;
    serve)
      rm -f "$out/inbox.sqlite" "$out/inbox.sqlite-wal" "$out/inbox.sqlite-shm"
      start serve "$bin/boxhook" --primary-key SamplePrimaryKey --secondary-key SampleSecondaryKey \
        serve --listen 127.0.0.1:0 --inbox "$out/inbox.sqlite" ;;
    *) echo "run.sh: unknown server $server" >&2; exit 2 ;;
  esac
  sleep 0.5
  BOXHOOK_CORPUS="$out/corpus" BOXHOOK_THREADS="$THREADS" \
    timeout "$((DURATION + 120))" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
    --latency -s "$root/benches/load/deliveries.lua" "$url" >"$out/$server.wrk" 2>&1 || true
  stop
  result="$(grep '^BOXHOOK_RESULT' "$out/$server.wrk" || true)"
  if [[ -z "$result" ]]; then
    echo "run.sh: wrk gave no result for $server; see $out/$server.wrk" >&2
    exit 1
  fi
  get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
  requests="$(get requests)"; duration="$(get duration_us)"
  rps[$server]="$(awk -v r="$requests" -v d="$duration" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
  repeats[$server]="$(get repeats)"; non2xx[$server]="$(get non2xx)"
  printf '%-8s %8s req/s  requests=%s non2xx=%s socket_errors=%s p50=%sus p99=%sus repeats=%s\n' \
    "$server" "${rps[$server]}" "$requests" "$(get non2xx)" \
    "$(( $(get connect) + $(get read) + $(get write) + $(get timeout) ))" \
    "$(get p50_us)" "$(get p99_us)" "$(get repeats)"
  tail -n 1 "$out/$server.stderr" | sed 's/^/         server: /'
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ratio A B: A's requests/s as a fraction of B's, or "-" if either is missing.
ratio() {
  if [[ -n "${rps[$1]:-}" && -n "${rps[$2]:-}" ]]; then
    awk -v a="${rps[$1]}" -v b="${rps[$2]}" 'BEGIN { printf "%.2f", a / b }'
  else
    echo "-"
  fi
}

echo
echo "| server | requests/s | / bare | / boxhook | non-2xx | repeated events |"
echo "|---|---:|---:|---:|---:|---:|"
for server in $SERVERS; do
  echo "| $server | ${rps[$server]} | $(ratio "$server" bare) | $(ratio "$server" boxhook) | ${non2xx[$server]} | ${repeats[$server]} |"
done
echo
echo "load average (1/5/15 min) at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (a shared machine: other work counts)"

# Every request must be a new event for boxhook and serve: a repeat is a
# duplicate (no handler, no insert) and flatters their figures.
status=0
for server in boxhook boxhook-metrics serve; do
  if [[ -n "${repeats[$server]:-}" && "${repeats[$server]}" != 0 ]]; then
    echo "run.sh: $server saw ${repeats[$server]} repeated events; raise COUNT (now $COUNT)" >&2
    status=1
  fi
done
exit "$status"
