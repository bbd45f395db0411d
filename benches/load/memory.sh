#!/usr/bin/env bash
# Peak memory of `boxhook serve` under many slow clients each sending a
# maximum-size body: CLIENTS connections to 127.0.0.1, each a POST that looks
# like a fresh Box delivery, declaring a 1 MiB body (the default limit) and
# sending it in 64 KiB pieces every 500 ms (8 s, under the 10 s read deadline),
# while /proc/<pid>/status is sampled every 100 ms.
#
#   bash benches/load/memory.sh                   # limits 1024 (default) and 250
#   LIMITS="1024" CLIENTS=1000 BUDGET=67108864 bash benches/load/memory.sh
#
# BUDGET is serve's --body-budget (default 64 MiB, serve's own default; 16 GiB
# turns it off in effect). Reports peak RSS (VmHWM) against the bound
# min(body limit x connections served, budget) + 16 KiB read buffer per
# connection + the idle RSS. Bounded: each run stops after FOR_SECONDS; the script kills what it started.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
CLIENTS="${CLIENTS:-1000}"
LIMITS="${LIMITS:-1024 250}"
BODY="${BODY:-1048576}"
BUDGET="${BUDGET:-67108864}"
CHUNK="${CHUNK:-65536}"
INTERVAL_MS="${INTERVAL_MS:-500}"
FOR_SECONDS="${FOR_SECONDS:-45}"
out="$root/target/load"
mkdir -p "$out"

# Each client is a socket on both ends.
if (( $(ulimit -n) < 2 * CLIENTS + 256 )); then
  ulimit -n "$(( 2 * CLIENTS + 256 ))"
fi

cargo build --release --quiet -p boxhook-benches --bin slow_clients
cargo build --release --quiet -p boxhook-cli
bin="$root/target/release"

server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null || true; }
trap cleanup EXIT

kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$2/status" 2>/dev/null || true; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(rustc --version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "clients: $CLIENTS x $BODY bytes in $CHUNK-byte pieces every $INTERVAL_MS ms"
rows=()
for limit in $LIMITS; do
  rm -f "$out/memory.sqlite" "$out/memory.sqlite-wal" "$out/memory.sqlite-shm"
  "$bin/boxhook" --primary-key SamplePrimaryKey serve --listen 127.0.0.1:0 \
    --inbox "$out/memory.sqlite" --max-body "$BODY" --max-connections "$limit" --body-budget "$BUDGET" \
    >"$out/memory-$limit.stdout" 2>/dev/null &
  server=$!
  for _ in $(seq 1 200); do
    addr="$(sed -n 's|^listening on http://\(127\.0\.0\.1:[0-9]*\).*|\1|p' "$out/memory-$limit.stdout")"
    [[ -n "$addr" ]] && break
    sleep 0.1
  done
  [[ -n "$addr" ]] || { echo "memory.sh: serve did not start" >&2; exit 1; }
  sleep 0.5
  idle="$(kib VmRSS "$server")"

  timeout "$(( FOR_SECONDS + 15 ))" "$bin/slow_clients" --connect "$addr" --connections "$CLIENTS" \
    --body-bytes "$BODY" --chunk "$CHUNK" --interval-ms "$INTERVAL_MS" --for-seconds "$FOR_SECONDS" \
    >"$out/memory-$limit.clients" 2>&1 &
  clients=$!
  peak_rss=0
  while kill -0 "$clients" 2>/dev/null; do
    rss="$(kib VmRSS "$server")"
    (( ${rss:-0} > peak_rss )) && peak_rss="$rss"
    sleep 0.1
  done
  wait "$clients" || true
  hwm="$(kib VmHWM "$server")"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""

  served=$(( CLIENTS < limit ? CLIENTS : limit ))
  bodies=$(( served * BODY < BUDGET ? served * BODY : BUDGET ))
  bound=$(( bodies / 1024 + served * 16 + idle ))
  echo "--max-connections $limit --body-budget $BUDGET: idle $(mib "$idle") MiB, peak VmHWM $(mib "$hwm") MiB" \
    "(sampled VmRSS max $(mib "$peak_rss") MiB), bound min($served x $(( BODY / 1024 )) KiB, budget) + $served x 16 KiB + idle = $(mib "$bound") MiB"
  sed 's/^/    /' "$out/memory-$limit.clients"
  rows+=("| $limit | $(mib $(( BUDGET / 1024 ))) MiB | $CLIENTS | $(mib "$idle") MiB | $(mib "$hwm") MiB | $(mib "$bound") MiB | $(awk -v h="$hwm" -v b="$bound" 'BEGIN { printf "%.2f", h / b }') |")
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| --max-connections | --body-budget | clients | idle RSS | peak RSS (VmHWM) | bound | peak / bound |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
