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
#   serve-tls
#           the same over HTTPS (--tls-cert/--tls-key, an ECDSA P-256
#           certificate; FIPS-only suites), keep-alive connections as above
#   serve-close, serve-tls-close
#           `serve` and `serve-tls` with `connection: close` on every
#           request: each delivery on a new connection, so with https each
#           costs a full TLS handshake (wrk resumes no session); their rate
#           is new connections (handshakes) per second
# For each server the CPU time it used per request is shown too (from
# /proc, user + system): on a shared machine it moves less than the rate,
# and serve-tls-close's minus serve-close's is what a handshake costs.
# Every server gets the same pre-signed deliveries (each a new event, signed
# seconds before the run) from wrk with benches/load/deliveries.lua.
#
#   bash benches/load/run.sh                      # 10 s x 64 connections each
#   DURATION=5 CONNECTIONS=32 bash benches/load/run.sh
#   SERVERS="serve serve-tls serve-close serve-tls-close" bash benches/load/run.sh
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
SERVERS="${SERVERS:-bare boxhook boxhook-metrics serve serve-tls serve-close serve-tls-close}"
out="$root/target/load"
mkdir -p "$out"

if ! command -v wrk >/dev/null; then
  sudo_cmd=""; [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq wrk
fi

cargo build --release --quiet -p boxhook-benches --bins
cargo build --release --quiet -p boxhook-cli
bin="${CARGO_TARGET_DIR:-$root/target}/release"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME CMD...: runs CMD in the background (bounded by `timeout`) and
# sets $url from its "listening on http(s)://..." line.
start() {
  local name="$1"; shift
  timeout --signal=TERM "$((DURATION + 180))" "$@" >"$out/$name.stdout" 2>"$out/$name.stderr" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 1 200); do
    url="$(sed -n 's|^listening on \(https\{0,1\}://127\.0\.0\.1:[0-9]*\).*|\1/|p' "$out/$name.stdout")"
    [[ -n "$url" ]] && return 0
    sleep 0.1
  done
  echo "run.sh: $name did not start; see $out/$name.stderr" >&2
  exit 1
}

# cpu_seconds: the user + system CPU time the server under `timeout` has
# used so far, in seconds.
cpu_seconds() {
  local child
  child="$(pgrep -P "$server_pid" | head -n 1)"
  awk -v tck="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / tck }' "/proc/$child/stat"
}

stop() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(rustc --version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "each server: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $SIZE-byte FILE.UPLOADED bodies"

# A throwaway certificate for the https rows (wrk does not verify it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE \
  -keyout "$out/tls.key" -out "$out/tls.crt" 2>/dev/null

rm -f "$out"/corpus.tsv "$out"/corpus.[0-9]*
"$bin/sign_corpus" load --count "$COUNT" --size "$SIZE" --threads "$THREADS" --out "$out/corpus"

declare -A rps repeats non2xx cpu_us
for server in $SERVERS; do
  close=0
  case "$server" in
    bare) start bare "$bin/bare_server" --listen 127.0.0.1:0 --for-seconds "$((DURATION + 120))" ;;
    boxhook) start boxhook "$bin/boxhook_server" --listen 127.0.0.1:0 --for-seconds "$((DURATION + 120))" ;;
    boxhook-metrics) start boxhook-metrics "$bin/boxhook_server" --listen 127.0.0.1:0 --for-seconds "$((DURATION + 120))" --metrics ;;
    serve|serve-tls|serve-close|serve-tls-close)
      rm -f "$out/inbox.sqlite" "$out/inbox.sqlite-wal" "$out/inbox.sqlite-shm"
      tls=()
      [[ "$server" == serve-tls* ]] && tls=(--tls-cert "$out/tls.crt" --tls-key "$out/tls.key")
      [[ "$server" == *-close ]] && close=1
      start "$server" "$bin/boxhook" --primary-key SamplePrimaryKey --secondary-key SampleSecondaryKey \
        serve --listen 127.0.0.1:0 --inbox "$out/inbox.sqlite" "${tls[@]}" ;;
    *) echo "run.sh: unknown server $server" >&2; exit 2 ;;
  esac
  sleep 0.5
  cpu_before="$(cpu_seconds)"
  BOXHOOK_CORPUS="$out/corpus" BOXHOOK_THREADS="$THREADS" BOXHOOK_CLOSE="$close" \
    timeout "$((DURATION + 120))" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
    --latency -s "$root/benches/load/deliveries.lua" "$url" >"$out/$server.wrk" 2>&1 || true
  cpu_after="$(cpu_seconds)"
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
  cpu_us[$server]="$(awk -v a="$cpu_before" -v b="$cpu_after" -v r="$requests" \
    'BEGIN { if (r > 0) printf "%.0f", (b - a) * 1e6 / r; else print "-" }')"
  printf '%-8s %8s req/s  requests=%s non2xx=%s socket_errors=%s p50=%sus p99=%sus repeats=%s cpu=%sus/req\n' \
    "$server" "${rps[$server]}" "$requests" "$(get non2xx)" \
    "$(( $(get connect) + $(get read) + $(get write) + $(get timeout) ))" \
    "$(get p50_us)" "$(get p99_us)" "$(get repeats)" "${cpu_us[$server]}"
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
echo "| server | requests/s | / bare | / boxhook | server CPU µs/request | non-2xx | repeated events |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for server in $SERVERS; do
  echo "| $server | ${rps[$server]} | $(ratio "$server" bare) | $(ratio "$server" boxhook) | ${cpu_us[$server]} | ${non2xx[$server]} | ${repeats[$server]} |"
done
if [[ -n "${cpu_us[serve-tls-close]:-}" && -n "${cpu_us[serve-close]:-}" ]]; then
  echo
  echo "a new TLS connection: ${rps[serve-tls-close]} handshakes/s (one delivery each);" \
    "$(( cpu_us[serve-tls-close] - cpu_us[serve-close] )) µs of server CPU more than a new plain one"
fi
echo
echo "load average (1/5/15 min) at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (a shared machine: other work counts)"

# Every request must be a new event for boxhook and serve: a repeat is a
# duplicate (no handler, no insert) and flatters their figures.
status=0
for server in boxhook boxhook-metrics serve serve-tls serve-close serve-tls-close; do
  if [[ -n "${repeats[$server]:-}" && "${repeats[$server]}" != 0 ]]; then
    echo "run.sh: $server saw ${repeats[$server]} repeated events; raise COUNT (now $COUNT)" >&2
    status=1
  fi
done
exit "$status"
