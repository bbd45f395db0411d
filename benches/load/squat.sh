#!/usr/bin/env bash
# Connection squatting against `boxhook serve`: JUNK keep-alive connections
# each sending `GET /` every 20 s and SILENT connections that send nothing,
# while a real signed delivery is timed every second on a fresh connection.
#
#   bash benches/load/squat.sh                        # 1024 junk + 2000 silent, 30 s
#   JUNK=1024 SILENT=0 FOR_SECONDS=20 bash benches/load/squat.sh
#
# serve runs with its defaults (--max-connections 1024). Bounded: the
# clients stop after FOR_SECONDS; the script kills what it started.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
JUNK="${JUNK:-1024}"
SILENT="${SILENT:-2000}"
FOR_SECONDS="${FOR_SECONDS:-30}"
out="$root/target/load"
mkdir -p "$out"

if (( $(ulimit -n) < 2 * (JUNK + SILENT) + 256 )); then
  ulimit -n "$(( 2 * (JUNK + SILENT) + 256 ))"
fi

cargo build --release --quiet -p boxhook-benches --bin squatters
cargo build --release --quiet -p boxhook-cli
bin="$root/target/release"

server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null || true; }
trap cleanup EXIT

rm -f "$out/squat.sqlite" "$out/squat.sqlite-wal" "$out/squat.sqlite-shm"
"$bin/boxhook" --primary-key SamplePrimaryKey serve --listen 127.0.0.1:0 \
  --inbox "$out/squat.sqlite" >"$out/squat.stdout" 2>"$out/squat.stderr" &
server=$!
addr=""
for _ in $(seq 1 200); do
  addr="$(sed -n 's|^listening on http://\(127\.0\.0\.1:[0-9]*\).*|\1|p' "$out/squat.stdout")"
  [[ -n "$addr" ]] && break
  sleep 0.1
done
[[ -n "$addr" ]] || { echo "squat.sh: serve did not start" >&2; exit 1; }

echo "machine: $(nproc) cores, $(rustc --version); serve with its default limits"
timeout "$(( FOR_SECONDS + 90 ))" "$bin/squatters" --connect "$addr" --junk "$JUNK" \
  --silent "$SILENT" --for-seconds "$FOR_SECONDS" | grep -v '^probe [0-9]*: 200 in [0-9] ms$' || true
