#!/usr/bin/env bash
# `boxhook serve` builds compared on the same load, runs alternated: what a
# change to the SQLite store path costs per stored delivery.
#
#   bash benches/load/serve_ab.sh old=/path/to/boxhook new=target/release/boxhook
#   bash benches/load/serve_ab.sh new=target/release/boxhook noav=target/release/boxhook+init.sql
#
# Each NAME=BIN[+SQL] runs `BIN serve` on a fresh inbox (prepared with
# `sqlite3 FILE < SQL` first when given, e.g. a file made by an older
# build), under the load of benches/load/run.sh (wrk, pre-signed new
# events of SIZE bytes). Per run it prints requests/s, p99, and the serve
# process's CPU time per request (user + system, from /proc): on a shared
# machine the requests/s of one build vary run to run with the other
# work, its CPU time per request much less. Compare medians over ROUNDS.
#
# 127.0.0.1 only; each server is bounded by `timeout`; the inbox and the
# corpus are removed at the end.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DURATION="${DURATION:-10}"; CONNECTIONS="${CONNECTIONS:-64}"; THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-5}"; COUNT="${COUNT:-600000}"; SIZE="${SIZE:-3072}"
out="$root/target/load-ab"
mkdir -p "$out"
[[ $# -ge 1 ]] || { echo "usage: serve_ab.sh NAME=BIN[+SQL] ..." >&2; exit 2; }
command -v wrk >/dev/null || { echo "serve_ab.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet -p boxhook-benches --bin sign_corpus
"$root/target/release/sign_corpus" load --count "$COUNT" --size "$SIZE" --threads "$THREADS" \
  --out "$out/corpus" >/dev/null
trap 'rm -f "$out"/inbox.sqlite* "$out"/corpus*' EXIT

declare -A cpu rps
for round in $(seq 1 "$ROUNDS"); do
  for variant in "$@"; do
    name="${variant%%=*}"; spec="${variant#*=}"; bin="${spec%%+*}"; sql=""
    [[ "$spec" == *+* ]] && sql="${spec#*+}"
    rm -f "$out"/inbox.sqlite* "$out/serve.stdout" "$out/serve.stderr"
    [[ -n "$sql" ]] && sqlite3 "$out/inbox.sqlite" <"$sql"
    timeout $((DURATION + 60)) "$bin" --primary-key SamplePrimaryKey --secondary-key SampleSecondaryKey \
      serve --listen 127.0.0.1:0 --inbox "$out/inbox.sqlite" >"$out/serve.stdout" 2>"$out/serve.stderr" &
    pid=$!
    url=""
    for _ in $(seq 1 200); do
      url="$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1/|p' "$out/serve.stdout" 2>/dev/null)"
      [[ -n "$url" ]] && break; sleep 0.1
    done
    [[ -n "$url" ]] || { echo "serve_ab.sh: $name did not start; see $out/serve.stderr" >&2; exit 1; }
    sleep 0.5
    serve_pid="$(pgrep -P "$pid")"
    before="$(awk '{print $14 + $15}' "/proc/$serve_pid/stat")"
    BOXHOOK_CORPUS="$out/corpus" BOXHOOK_THREADS="$THREADS" \
      timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
      --latency -s "$root/benches/load/deliveries.lua" "$url" >"$out/wrk.out" 2>&1 || true
    after="$(awk '{print $14 + $15}' "/proc/$serve_pid/stat")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    result="$(grep '^BOXHOOK_RESULT' "$out/wrk.out")" || { echo "serve_ab.sh: no result for $name; see $out/wrk.out" >&2; exit 1; }
    get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
    requests="$(get requests)"
    r="$(awk -v r="$requests" -v d="$(get duration_us)" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
    c="$(awk -v t=$((after - before)) -v r="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 1e6 / hz / r }')"
    rps[$name]+="$r "; cpu[$name]+="$c "
    echo "round $round $name: $r req/s, p99 $(get p99_us) us, non2xx $(get non2xx), repeats $(get repeats), serve CPU $c us/request, load $(cut -d' ' -f1 /proc/loadavg)"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo
echo "| build | median req/s | median serve CPU µs/request |"
echo "|---|---:|---:|"
for variant in "$@"; do
  name="${variant%%=*}"
  echo "| $name | $(median <<<"${rps[$name]}") | $(median <<<"${cpu[$name]}") |"
done
echo
echo "$(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: other work counts)"
