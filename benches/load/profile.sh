#!/usr/bin/env bash
# Where boxhook's CPU per request goes in the real server, under load.
#
# Runs `bare_server` and `boxhook_server --stage S` for each stage of the
# event path (verify, peek, parse, full: each the one before plus one step;
# see benches/src/bin/boxhook_server.rs), one after the other, each under
# `wrk -t2 -c64` on 127.0.0.1 with the pre-signed 3 KiB deliveries of
# benches/load/run.sh, and reads from /proc the CPU time (user and system)
# each server used per request: the difference between two stages is what
# that step costs in the running server, with its allocations, copies and
# cache misses, not in a micro-benchmark. Then samples `bare` and `full`
# with `perf record` (cpu-clock; the kernel's perf_event_paranoid must
# allow it for one's own processes) and sorts their self time into parts
# (benches/load/profile_parts.py).
#
#   bash benches/load/profile.sh                  # 10 s per server
#   DURATION=5 PERF=0 bash benches/load/profile.sh
#
# Builds release binaries with line tables into $PROFILE_TARGET_DIR
# (default target/profile-build), apart from the plain release build.
# 127.0.0.1 only; every server runs under `timeout` and exits by itself.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
COUNT="${COUNT:-600000}"
SIZE="${SIZE:-3072}"
PERF="${PERF:-1}"
STAGES="bare verify peek parse full"
out="$root/target/load/profile"
mkdir -p "$out"
target="${PROFILE_TARGET_DIR:-$root/target/profile-build}"

for tool in wrk perf; do
  if [[ "$tool" == perf && "$PERF" == 0 ]]; then continue; fi
  if ! command -v "$tool" >/dev/null; then
    sudo_cmd=""; [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
    package="$tool"; [[ "$tool" == perf ]] && package=linux-perf
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "$package"
  fi
done

CARGO_TARGET_DIR="$target" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --release --quiet -p boxhook-benches --bin bare_server --bin boxhook_server --bin sign_corpus
bin="$target/release"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$out"/corpus.[0-9]*
"$bin/sign_corpus" load --count "$COUNT" --size "$SIZE" --threads "$THREADS" --out "$out/corpus"

# cpu PID: "user system" CPU seconds the process has used so far.
cpu() {
  awk -v tck="$(getconf CLK_TCK)" '{ printf "%.3f %.3f", $14 / tck, $15 / tck }' "/proc/$1/stat"
}

declare -A rps user sys total
for stage in $STAGES; do
  args=(--listen 127.0.0.1:0 --for-seconds "$((DURATION + 120))")
  if [[ "$stage" == bare ]]; then program="$bin/bare_server"; else program="$bin/boxhook_server"; args+=(--stage "$stage"); fi
  timeout --signal=TERM "$((DURATION + 180))" "$program" "${args[@]}" >"$out/$stage.stdout" 2>"$out/$stage.stderr" &
  wrapper=$!
  pids+=("$wrapper")
  url=""
  for _ in $(seq 1 200); do
    url="$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1/|p' "$out/$stage.stdout")"
    [[ -n "$url" ]] && break
    sleep 0.1
  done
  [[ -n "$url" ]] || { echo "profile.sh: $stage did not start; see $out/$stage.stderr" >&2; exit 1; }
  server="$(pgrep -P "$wrapper" | head -n 1)"
  sleep 0.5
  perf_pid=""
  if [[ ( "$stage" == full || "$stage" == bare ) && "$PERF" != 0 ]]; then
    perf record -q -F 4999 -e cpu-clock -p "$server" -o "$out/$stage.perf" -- sleep "$DURATION" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  read -r u0 s0 <<<"$(cpu "$server")"
  BOXHOOK_CORPUS="$out/corpus" BOXHOOK_THREADS="$THREADS" BOXHOOK_CLOSE=0 \
    timeout "$((DURATION + 120))" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
    -s "$root/benches/load/deliveries.lua" "$url" >"$out/$stage.wrk" 2>&1 || true
  read -r u1 s1 <<<"$(cpu "$server")"
  [[ -n "$perf_pid" ]] && wait "$perf_pid" || true
  kill "$wrapper" 2>/dev/null || true
  wait "$wrapper" 2>/dev/null || true
  result="$(grep '^BOXHOOK_RESULT' "$out/$stage.wrk" || true)"
  [[ -n "$result" ]] || { echo "profile.sh: wrk gave no result for $stage; see $out/$stage.wrk" >&2; exit 1; }
  get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
  requests="$(get requests)"
  if [[ "$(get non2xx)" != 0 ]]; then
    echo "profile.sh: $stage answered $(get non2xx) requests with a non-2xx status; see $out/$stage.stderr" >&2
    exit 1
  fi
  if [[ "$stage" == parse || "$stage" == full ]] && [[ "$(get repeats)" != 0 ]]; then
    echo "profile.sh: $stage saw $(get repeats) repeated events; raise COUNT (now $COUNT)" >&2
    exit 1
  fi
  rps[$stage]="$(awk -v r="$requests" -v d="$(get duration_us)" 'BEGIN { printf "%.0f", r / (d / 1e6) }')"
  user[$stage]="$(awk -v a="$u0" -v b="$u1" -v r="$requests" 'BEGIN { printf "%.1f", (b - a) * 1e6 / r }')"
  sys[$stage]="$(awk -v a="$s0" -v b="$s1" -v r="$requests" 'BEGIN { printf "%.1f", (b - a) * 1e6 / r }')"
  total[$stage]="$(awk -v a="${user[$stage]}" -v b="${sys[$stage]}" 'BEGIN { printf "%.1f", a + b }')"
  echo "$stage: ${rps[$stage]} req/s, ${user[$stage]} + ${sys[$stage]} µs CPU (user + system) per request"
done

echo
echo "| stage | requests/s | user µs/req | system µs/req | total µs/req | step | step µs |"
echo "|---|---:|---:|---:|---:|---|---:|"
previous=""
for stage in $STAGES; do
  step="-"; delta="-"
  if [[ -n "$previous" ]]; then
    step="$previous → $stage"
    delta="$(awk -v a="${total[$stage]}" -v b="${total[$previous]}" 'BEGIN { printf "%+.1f", a - b }')"
  fi
  echo "| $stage | ${rps[$stage]} | ${user[$stage]} | ${sys[$stage]} | ${total[$stage]} | $step | $delta |"
  previous="$stage"
done
echo
echo "boxhook (full) − bare: $(awk -v a="${total[full]}" -v b="${total[bare]}" 'BEGIN { printf "%.1f", a - b }') µs of server CPU per request; loopback ratio $(awk -v a="${rps[full]}" -v b="${rps[bare]}" 'BEGIN { printf "%.2f", a / b }')"

if [[ "$PERF" != 0 && -s "$out/full.perf" && -s "$out/bare.perf" ]]; then
  echo
  echo "self time by part (perf, cpu-clock samples), as µs of each server's CPU per request"
  for stage in bare full; do
    perf report -i "$out/$stage.perf" --no-children --sort dso,symbol --stdio -q --percent-limit 0 \
      >"$out/$stage.report" 2>/dev/null
  done
  python3 "$root/benches/load/profile_parts.py" "$out/bare.report" "${total[bare]}" "$out/full.report" "${total[full]}"
fi
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (a shared machine: other work counts)"
